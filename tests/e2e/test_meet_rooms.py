"""Room and recording lists filtered as OpenVidu Meet filters them, and DELETE /rooms/{roomId} answered as Meet
answers it (issue 17, theme 7), against the real API on both catalog databases."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import StackFactory
from tests.helpers import create_room, join
from tests.integration.test_listing import insert_rows, make_rows


async def names(api: httpx.AsyncClient, path: str, key: str, **params: Any) -> set[str]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return {item[key] for item in response.json()[path.rsplit("/", 1)[1]]}


def refused(response: httpx.Response, field: str, message: str) -> bool:
    body = response.json()
    return response.status_code == 422 and body["details"] == [{"field": field, "message": message}]


@pytest.mark.parametrize("catalog_url", ["sqlite", "postgresql"], indirect=True)
async def test_name_filters_match_as_meet_on_both_databases(stacks: StackFactory, catalog_url: str) -> None:
    stack = await stacks.start(recorder=False, database_url=catalog_url)
    api = stack.api
    titles = ["Weekly sync", "weekly review", "Team-A daily", "team-b daily", "Done_x 100", "Doneyx"]
    ids = {title: await create_room(api, title) for title in titles}
    await api.delete(f"/api/v1/rooms/{ids['team-b daily']}", params={"withRecordings": "close"})

    def rooms(**params: Any) -> Any:
        return names(api, "/api/v1/rooms", "roomName", **params)

    assert await rooms(roomName="Weekly sync") == {"Weekly sync"}  # exact is the default
    assert await rooms(roomName="weekly sync") == set()
    assert await rooms(roomName="weekly sync", roomNameCaseInsensitive="true") == {"Weekly sync"}
    assert await rooms(roomName="weekly", roomNameMatchMode="prefix") == {"weekly review"}
    assert await rooms(roomName="WEEKLY", roomNameMatchMode="prefix", roomNameCaseInsensitive="true") == {
        "Weekly sync",
        "weekly review",
    }
    assert await rooms(roomName="daily", roomNameMatchMode="partial") == {"Team-A daily", "team-b daily"}
    assert await rooms(roomName="e_x", roomNameMatchMode="partial") == {"Done_x 100"}  # `_` is no wildcard
    assert await rooms(roomName="^team-[a-z] ", roomNameMatchMode="regex") == {"team-b daily"}
    assert await rooms(roomName="^team-[a-z] ", roomNameMatchMode="regex", roomNameCaseInsensitive="true") == {
        "Team-A daily",
        "team-b daily",
    }
    assert await rooms(roomName="(sync|review)$", roomNameMatchMode="regex") == {"Weekly sync", "weekly review"}
    assert await rooms(roomName=r"\d+$", roomNameMatchMode="regex") == {"Done_x 100"}
    assert await rooms(roomName="daily", roomNameMatchMode="partial", status="closed") == {"team-b daily"}
    assert await rooms(status="open") == set(titles) - {"team-b daily"}

    # Paging keeps the filter; a token made for other filters is refused.
    filtered = {"roomName": "^[tw]", "roomNameMatchMode": "regex", "roomNameCaseInsensitive": "true", "maxItems": 1}
    seen: list[str] = []
    token = None
    while True:
        page = (await api.get("/api/v1/rooms", params=filtered | ({"nextPageToken": token} if token else {}))).json()
        seen += [room["roomName"] for room in page["rooms"]]
        token = page["pagination"]["nextPageToken"] or token
        if not page["pagination"]["isTruncated"]:
            break
    assert sorted(seen) == sorted(t for t in titles if t[0] in "TtWw")
    other = await api.get("/api/v1/rooms", params={"roomName": "x", "nextPageToken": token})
    assert other.status_code == 422 and other.json()["details"][0]["field"] == "nextPageToken"

    # Meet's messages for patterns it refuses, on both lists; and what keeps a pattern linear here.
    for path in ("/api/v1/rooms", "/api/v1/recordings"):

        def regex(pattern: str, path: str = path) -> Any:
            return api.get(path, params={"roomName": pattern, "roomNameMatchMode": "regex"})

        assert refused(await regex("("), "roomName", "Invalid regular expression pattern")
        assert refused(await regex("a" * 101), "roomName", "Regular expression pattern cannot exceed 100 characters")
        assert refused(await regex("a{1000000}"), "roomName", "Regular expression quantifiers cannot exceed 255")
        for unsafe in (r"(a)\1", "(?=a)", "(?i)a", r"\bx", "a**", "[[:alpha:]]"):
            assert refused(await regex(unsafe), "roomName", "Invalid regular expression pattern"), unsafe
        assert (await api.get(path, params={"roomNameMatchMode": "glob"})).status_code == 422

    # A pattern a backtracking engine takes ages on answers at once, over many names.
    rows = make_rows(300, names=["a" * 40 + "!", "a" * 60, "b" * 30])
    await insert_rows(stack.catalog, rows)
    began = time.monotonic()
    found = await api.get("/api/v1/recordings", params={"roomName": "^(a+)+$", "roomNameMatchMode": "regex"})
    assert found.status_code == 200 and time.monotonic() - began < 5
    assert {r["roomName"] for r in found.json()["recordings"]} == {"a" * 60}

    # roomId and roomName together: either one (Meet combines them with OR), through every page.
    room_a, room_b = rows[0]["room_id"], next(r for r in rows if r["room_name"] == "b" * 30)
    expected = {r["recording_id"] for r in rows if r["room_id"] == room_a or r["room_name"] == "b" * 30}
    seen: list[str] = []
    token = None
    while True:
        params = {"roomId": room_a, "roomName": room_b["room_name"], "maxItems": 40}
        page = (await api.get("/api/v1/recordings", params=params | ({"nextPageToken": token} if token else {}))).json()
        seen += [r["recordingId"] for r in page["recordings"]]
        token = page["pagination"]["nextPageToken"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == expected


async def test_deleting_rooms_answers_as_meet(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api

    async def delete(room_id: str, **params: str) -> httpx.Response:
        return await api.delete(f"/api/v1/rooms/{room_id}", params=params)

    def conflict(response: httpx.Response, code: str, message: str) -> bool:
        return (
            response.status_code == 409 and response.json()["error"] == code and response.json()["message"] == message
        )

    def done(response: httpx.Response, code: str, message: str) -> bool:
        body = response.json()
        return response.status_code == 200 and body["successCode"] == code and body["message"] == message

    async def with_recording(room_id: str) -> None:
        [row] = make_rows(1)
        await insert_rows(stack.catalog, [row | {"room_id": room_id, "recording_id": f"{room_id}--EG_x--1"}])

    plain = await create_room(api, "Plain")
    assert done(await delete(plain), "room_deleted", f"Room '{plain}' deleted successfully")
    assert (await api.get(f"/api/v1/rooms/{plain}")).status_code == 404

    # A call everyone has left (WHIP publishers that stopped) is no meeting: as Talk's `hasCall`, it goes with the room.
    left = await create_room(api, "Left")
    await join(api, left, "Dora")
    assert (await api.put(f"/api/v1/rooms/{left}/call", json={"participants": []})).status_code == 200
    assert done(await delete(left), "room_deleted", f"Room '{left}' deleted successfully")
    assert (await api.get(f"/api/v1/rooms/{left}/call")).status_code == 404

    meeting = await create_room(api, "Meeting")
    await join(api, meeting, "Alice")
    assert conflict(
        await delete(meeting),
        "room_has_active_meeting",
        f"Room '{meeting}' cannot be deleted because it has an active meeting.",
    )
    assert (await delete(meeting, withMeeting="later")).status_code == 422
    gone = await delete(meeting, withMeeting="force")
    assert done(gone, "room_with_active_meeting_deleted", f"Room '{meeting}' with active meeting deleted successfully")

    kept = await create_room(api, "Kept")
    await with_recording(kept)
    assert conflict(
        await delete(kept), "room_has_recordings", f"Room '{kept}' cannot be deleted because it has recordings."
    )
    closed = await delete(kept, withRecordings="close")
    assert done(closed, "room_closed", f"Room '{kept}' has been closed instead of deleted because it has recordings")
    assert closed.json()["room"]["status"] == "closed" and closed.json()["room"]["roomId"] == kept
    forced = await delete(kept, withRecordings="force")
    assert done(forced, "room_and_recordings_deleted", f"Room '{kept}' and its recordings deleted successfully")
    assert forced.json()["deletedRecordings"] == [f"{kept}--EG_x--1"]
    assert (await api.get(f"/api/v1/recordings/{kept}--EG_x--1")).status_code == 404

    both = await create_room(api, "Both")
    await with_recording(both)
    await join(api, both, "Bob")
    assert conflict(
        await delete(both),
        "room_with_recordings_has_active_meeting",
        f"Room '{both}' with recordings cannot be deleted because it has an active meeting.",
    )
    assert conflict(
        await delete(both, withMeeting="force"),
        "room_with_active_meeting_has_recordings",
        f"Room '{both}' with active meeting cannot be deleted because it has recordings.",
    )
    assert conflict(
        await delete(both, withMeeting="when_meeting_ends"),
        "room_with_active_meeting_has_recordings_cannot_schedule_deletion",
        f"Room '{both}' with active meeting cannot be scheduled to be deleted because it has recordings.",
    )
    # Scheduling (Meet's 202) is not something callrec does: refused, nothing changed.
    later = await delete(both, withMeeting="when_meeting_ends", withRecordings="force")
    assert later.status_code == 409 and "withMeeting=force" in later.json()["message"]
    assert (await api.get(f"/api/v1/rooms/{both}/call")).status_code == 200
    shut = await delete(both, withMeeting="force", withRecordings="close")
    assert done(
        shut,
        "room_with_active_meeting_closed",
        f"Room '{both}' with active meeting has been closed instead of deleted because it has recordings",
    )
    assert (await api.get(f"/api/v1/rooms/{both}/call")).status_code == 404  # the call was ended
    all_gone = await delete(both, withRecordings="force")
    assert done(all_gone, "room_and_recordings_deleted", f"Room '{both}' and its recordings deleted successfully")

    # callrec's `close` without withMeeting still ends the call and closes the room, as it always did.
    legacy = await create_room(api, "Legacy")
    await join(api, legacy, "Carol")
    legacy_closed = await delete(legacy, withRecordings="close")
    assert legacy_closed.status_code == 200 and legacy_closed.json()["successCode"] == "room_with_active_meeting_closed"
    assert legacy_closed.json()["room"]["status"] == "closed"
