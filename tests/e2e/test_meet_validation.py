"""Validation as OpenVidu Meet 3.8 answers it, over real HTTP: ids sanitised or refused with Meet's messages (422,
never a 404 for a malformed id), typed query parameters, and `Range` checked the way Meet checks it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import StackFactory
from tests.helpers import create_room, join, record

FORMAT = "recordingId does not follow the expected format"
RANGE = [{"field": "headers.range", "message": "Invalid range header format. Expected: bytes=start-end"}]


def meet_422(response: httpx.Response) -> list[dict[str, str]]:
    """The details of Meet's 422 body (and that it is one)."""
    assert response.status_code == 422, (response.request.url, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] == "Unprocessable Entity" and body["message"] == "Invalid request", body
    details: list[dict[str, str]] = body["details"]
    return details


async def test_ids_query_parameters_and_range_as_meet_validates_them(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api, "Validation")
    await join(api, room_id, "Alice")
    recording = await record(api, room_id, seconds=0.5)
    assert recording["status"] == "complete", recording
    rec = recording["recordingId"]
    unknown = f"{room_id}--EG_nothere--12345"

    # Recording ids: malformed is a 422 naming the field as Meet does, on every path; well-formed unknown a 404.
    by_path = [
        ("GET", "/api/v1/recordings/{}", "params.recordingId"),
        ("GET", "/api/v1/recordings/{}/media", "params.recordingId"),
        ("GET", "/api/v1/recordings/{}/url", "params.recordingId"),
        ("POST", "/api/v1/recordings/{}/stop", "recordingId"),
        ("DELETE", "/api/v1/recordings/{}", "recordingId"),
        ("GET", "/api/v1/recordings/{}/download", "recordingId"),
    ]
    for method, path, field in by_path:
        for malformed in ("invalid-recording-id", f"{room_id}--EG_--x", f"{room_id}--EG_a--b--c"):
            details = meet_422(await api.request(method, path.format(malformed)))
            assert details == [{"field": field, "message": FORMAT}], (method, path)
        assert (await api.request(method, path.format(unknown))).status_code == 404, (method, path)
    # Sanitised, as Meet does: surrounding spaces and characters outside its set in the room part are dropped.
    for spaced in (f"  {rec} ", f"{room_id}!{rec.removeprefix(room_id)}"):
        got = await api.get(f"/api/v1/recordings/{spaced}")
        assert got.status_code == 200 and got.json()["recordingId"] == rec, got.text
    # Lists of ids (bulk delete, ZIP): at least one, each well-formed, reported by index.
    for method, path in (("DELETE", "/api/v1/recordings"), ("GET", "/api/v1/recordings/download")):
        details = meet_422(await api.request(method, path, params={"recordingIds": f"{unknown},bad--id"}))
        assert details == [{"field": "recordingIds.1", "message": FORMAT}]
        details = meet_422(await api.request(method, path, params={"recordingIds": " , "}))
        assert details == [{"field": "recordingIds", "message": "At least one recordingId is required"}]

    # Room ids: path, body and query; sanitised, at most 100 characters, not empty after sanitising.
    assert (await api.get(f"/api/v1/rooms/ {room_id}!")).json()["roomId"] == room_id
    too_long = [{"field": "roomId", "message": "roomId cannot exceed 100 characters"}]
    emptied = [{"field": "roomId", "message": "roomId cannot be empty after sanitization"}]
    assert meet_422(await api.get(f"/api/v1/rooms/{'r' * 101}")) == too_long
    assert meet_422(await api.get("/api/v1/rooms/%21%2A/config")) == emptied
    assert meet_422(await api.post("/api/v1/recordings", json={"roomId": "!!"})) == emptied
    assert meet_422(await api.post("/api/v1/recordings", json={"roomId": "r" * 101})) == too_long
    assert meet_422(await api.post("/api/v1/recordings", json={"roomId": ""})) == [
        {"field": "roomId", "message": "roomId is required and cannot be empty"}
    ]
    assert meet_422(await api.post("/api/v1/recordings", json={"roomId": 7})) == [
        {"field": "roomId", "message": "Expected string, received number"}
    ]
    assert meet_422(await api.post("/api/v1/recordings", json={})) == [{"field": "roomId", "message": "Required"}]
    assert meet_422(await api.get("/api/v1/recordings", params={"roomId": "%"})) == emptied
    listed = await api.get("/api/v1/recordings", params={"roomId": f" {room_id}#"})
    assert [r["recordingId"] for r in listed.json()["recordings"]] == [rec]

    # Typed query parameters, with Meet's (zod's) wording.
    for path in ("/api/v1/recordings", "/api/v1/rooms"):
        for raw, message in (
            ("abc", "Expected number, received nan"),
            ("0", "maxItems must be a positive number"),
            ("-2", "maxItems must be a positive number"),
            ("3.5", "Expected integer, received float"),
        ):
            assert meet_422(await api.get(path, params={"maxItems": raw})) == [
                {"field": "maxItems", "message": message}
            ], (path, raw)
        page = await api.get(path, params={"maxItems": "500"})
        assert page.status_code == 200 and page.json()["pagination"]["maxItems"] == 100
    assert meet_422(await api.get("/api/v1/recordings", params={"roomNameCaseInsensitive": "yes"})) == [
        {"field": "roomNameCaseInsensitive", "message": "Expected boolean, received string"}
    ]
    assert (await api.get("/api/v1/recordings", params={"roomNameCaseInsensitive": "TRUE"})).status_code == 200
    sort = meet_422(await api.get("/api/v1/recordings", params={"sortOrder": "up"}))
    assert sort == [{"field": "sortOrder", "message": "Invalid enum value. Expected 'asc' | 'desc', received 'up'"}]
    policy = meet_422(await api.delete(f"/api/v1/rooms/{room_id}", params={"withRecordings": "maybe"}))
    assert policy[0]["field"] == "withRecordings", policy
    assert policy[0]["message"].startswith("Invalid enum value. Expected 'fail' | "), policy
    assert policy[0]["message"].endswith(", received 'maybe'"), policy
    # privateAccess: `true` in any case is true, anything else false (never a 422).
    urls = {}
    for value in ("TRUE", "true", "yes", "1", "false"):
        response = await api.get(f"/api/v1/recordings/{rec}/url", params={"privateAccess": value})
        assert response.status_code == 200, (value, response.text)
        urls[value] = response.json()["url"]
    assert urls["TRUE"] == urls["true"] != urls["false"] == urls["yes"] == urls["1"]

    # Range: one `bytes=start-[end]`; suffix, multi and malformed ranges are a 422 (before the recording is read).
    media = f"/api/v1/recordings/{rec}/media"
    whole = await api.get(media)
    size = len(whole.content)
    assert whole.status_code == 200 and size > 10
    for bad in ("bytes=-500", "bytes=0-1,4-9", "bytes=100", "invalid-range", "bytes=a-"):
        assert meet_422(await api.get(media, headers={"Range": bad})) == RANGE, bad
    assert meet_422(await api.get(f"/api/v1/recordings/{unknown}/media", headers={"Range": "bytes=-1"})) == RANGE
    part = await api.get(media, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{size}"
    beyond = await api.get(media, headers={"Range": f"bytes=0-{size * 2}"})
    assert beyond.status_code == 206 and beyond.headers["Content-Range"] == f"bytes 0-{size - 1}/{size}"
    assert (await api.get(media, headers={"Range": "bytes=9-3"})).status_code == 200  # end before start: all
    refused = await api.get(media, headers={"Range": f"bytes={size}-"})
    assert refused.status_code == 416 and refused.json()["error"] == "Recording Error"
    assert refused.json()["message"] == f"Recording '{rec}' range not satisfiable. File size: {size}"
