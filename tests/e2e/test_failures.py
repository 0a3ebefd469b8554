"""Every way a recording can go wrong, and every bad request, gives the status and body a user can act on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from callrec.domain import signing
from tests.conftest import SECRET, Stack, StackFactory
from tests.helpers import (
    OCS,
    PeakRss,
    backend_callback,
    create_room,
    join,
    mp4_bytes,
    outcome,
    record,
    room_recording,
    upload,
    wait_for_status,
)
from tests.recording_server import ScriptedRecordingServer


async def scripted_room(stacks: StackFactory, scripted: ScriptedRecordingServer) -> tuple[Stack, str]:
    """A stack whose recording server is the scripted one, and a room with a call in it."""
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=f"http://127.0.0.1:{scripted.port}")
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    return stack, room_id


async def start_with_scripted_recorder(api: httpx.AsyncClient, scripted: ScriptedRecordingServer, room_id: str) -> str:
    pending = asyncio.create_task(api.post("/api/v1/recordings", json={"roomId": room_id}))
    await scripted.wait_for("start")
    recording_id = await room_recording(api, room_id)
    response = await backend_callback(api, SECRET, "started", {"token": room_id, "status": 1})
    assert response.status_code == 200, response.text
    started = await pending
    assert started.status_code == 201, started.text
    assert started.json()["recordingId"] == recording_id
    return recording_id


async def test_recorder_that_never_reports_started_gives_503_and_failed(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    # The recording server takes the start but never says `started` (a misconfigured callback URL, say).
    url = f"http://127.0.0.1:{scripted.port}"
    stack = await stacks.start(recorder=False, egress="talk", talk_recording_server=url, start_timeout_s=3)
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")

    response = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert response.status_code == 503
    assert response.json()["error"] == "Recording Error"
    assert "did not report 'started' within 3 s" in response.json()["message"]

    listed = (await stack.api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    assert [(r["status"], r["error"]) for r in listed] == [("failed", "start_timeout")]
    await scripted.wait_for("stop")  # egress was stopped: the recording server holds no recording any more


async def test_recorder_failure_fails_the_recording_and_a_new_one_can_start(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    started = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201
    recording_id = started.json()["recordingId"]

    reason = "Disk full on the recording server"
    response = await backend_callback(stack.api, SECRET, "failed", {"token": room_id, "reason": reason})
    assert response.status_code == 200
    failed = await wait_for_status(stack.api, recording_id, {"failed"})
    assert (failed["error"], failed["errorCode"], failed["details"]) == ("recorder_failed", 500, reason)

    again = await record(stack.api, room_id)
    assert again["status"] == "complete" and again["recordingId"] != recording_id


async def test_a_cut_off_mp4_fails_with_the_reason(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack, room_id = await scripted_room(stacks, scripted)
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)

    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    await scripted.wait_for("stop")
    video = mp4_bytes(tmp_path)
    stored = await upload(stack.api, SECRET, room_id, "call.mp4", video[: len(video) // 2])  # an MP4 until it stops
    assert stored.status_code == 200, stored.text
    assert stored.json()["ocs"]["meta"]["statuscode"] == 200
    assert (await backend_callback(stack.api, SECRET, "stopped", {"token": room_id})).status_code == 200

    failed = await wait_for_status(stack.api, recording_id, {"failed", "complete"})
    assert failed["status"] == "failed"
    assert failed["error"] == "invalid_file" and failed["errorCode"] == 422
    assert failed["details"] and "file" in failed["details"].lower()
    assert await stack.store.list_keys("staging/") == []
    assert await stack.store.list_keys("recordings/") == []
    media = await stack.api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 409


async def test_recorder_protocol_rejects_bad_requests(stacks: StackFactory, scripted: ScriptedRecordingServer) -> None:
    stack, room_id = await scripted_room(stacks, scripted)
    api = stack.api

    body = json.dumps({"type": "started", "started": {"token": room_id}}).encode()
    forged = {signing.RANDOM_HEADER: "r" * 32, signing.CHECKSUM_HEADER: "0" * 64}
    assert (await api.post(f"{OCS}/recording/backend", content=body, headers=forged)).status_code == 403
    short_random = signing.signed_headers(SECRET, body) | {signing.RANDOM_HEADER: "short"}
    assert (await api.post(f"{OCS}/recording/backend", content=body, headers=short_random)).status_code == 403
    assert (await backend_callback(api, SECRET, "started", {"token": "no-such-room"})).status_code == 404
    assert (await backend_callback(api, SECRET, "started", {"token": room_id})).status_code == 404  # none running
    malformed = b"{not json"
    signed = signing.signed_headers(SECRET, malformed)
    response = await api.post(f"{OCS}/recording/backend", content=malformed, headers=signed)
    assert response.status_code == 400

    recording_id = await start_with_scripted_recorder(api, scripted, room_id)
    late_started = await backend_callback(api, SECRET, "started", {"token": room_id, "recordingId": recording_id})
    assert late_started.status_code == 404  # `started` only while the recording is starting
    bad_upload = await api.post(
        f"{OCS}/recording/{room_id}/store",
        headers=signing.signed_headers("wrong-secret", room_id.encode()),
        files={"file": ("call.mp4", b"x", "video/mp4")},
    )
    assert bad_upload.status_code == 401
    not_media = await upload(api, SECRET, room_id, "call.mp4", b"x" * 100)
    assert (not_media.status_code, not_media.json()["ocs"]["data"]["error"]) == (400, "file_mimetype")
    empty = await upload(api, SECRET, room_id, "call.mp4", b"")
    assert (empty.status_code, empty.json()["ocs"]["data"]["error"]) == (400, "empty_file")
    assert (await upload(api, SECRET, "no-such-room", "call.mp4", b"x")).status_code == 404
    assert await stack.store.list_keys("staging/") == []
    assert (await wait_for_status(api, recording_id, {"active"}))["status"] == "active"


async def test_request_errors(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    base = str(api.base_url)
    async with httpx.AsyncClient(base_url=base) as anonymous:
        missing = await anonymous.get("/api/v1/recordings")
        assert missing.status_code == 401
        assert missing.json()["error"] == "Authentication Error"
        assert "X-API-KEY" in missing.json()["message"]  # it names what to send
        wrong = await anonymous.get("/api/v1/recordings", headers={"X-API-KEY": "nope"})
        assert wrong.status_code == 401
        assert wrong.json()["message"].startswith("Invalid API key")

    invalid = await api.post("/api/v1/recordings", json={})
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "Unprocessable Entity"
    assert [d["field"] for d in invalid.json()["details"]] == ["roomId"]
    room_id = await create_room(api)
    bad_layout = await api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"layout": "mosaic"}})
    assert bad_layout.status_code == 422
    assert bad_layout.json()["details"][0]["field"] == "config.layout"
    bad_encoding = await api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"encoding": "H264_8K"}})
    assert bad_encoding.status_code == 422
    malformed = await api.post("/api/v1/recordings", content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    bad_room = await api.post("/api/v1/rooms", json={"roomName": "", "config": {"recording": {"layout": "x"}}})
    assert bad_room.status_code == 422
    assert {d["field"] for d in bad_room.json()["details"]} == {"roomName", "config.recording.layout"}

    unknown = await api.post("/api/v1/recordings", json={"roomId": "no-such-room"})
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Room 'no-such-room' does not exist")
    no_call = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert (no_call.status_code, no_call.json()["message"]) == (409, f"Room '{room_id}' has no participants")
    await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": []})
    assert (await api.post("/api/v1/recordings", json={"roomId": room_id})).status_code == 409
    await join(api, room_id, "Alice")

    disabled = await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": False}}})
    assert disabled.status_code == 200 and disabled.json()["recording"]["enabled"] is False
    assert disabled.json()["recording"]["layout"] == "grid"  # fields not given keep their value
    forbidden = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert (forbidden.status_code, forbidden.json()["message"]) == (403, f"Recording is disabled for room '{room_id}'")
    await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": True}}})

    assert (await api.get("/api/v1/recordings/nope--EG_x--y")).status_code == 404
    assert (await api.post("/api/v1/recordings/nope--EG_x--y/stop")).status_code == 404
    assert (await api.get("/api/v1/recordings/nope--EG_x--y/media")).status_code == 404
    assert (await api.get("/api/v1/rooms/nope")).status_code == 404

    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201
    recording_id = started.json()["recordingId"]
    again = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert (again.status_code, again.json()["message"]) == (409, f"Room '{room_id}' is already being recorded")
    in_progress = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert in_progress.status_code == 409
    assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 409
    assert (await wait_for_status(api, recording_id, {"complete"}))["status"] == "complete"
    assert (await api.get("/api/v1/recordings", params={"maxItems": "0"})).status_code == 422


async def test_racing_starts_across_two_api_processes_give_one_recording(stacks: StackFactory) -> None:
    stack = await stacks.start()
    other = await stacks.start_api(stack)
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")

    first, second = await asyncio.gather(
        stack.api.post("/api/v1/recordings", json={"roomId": room_id}),
        other.post("/api/v1/recordings", json={"roomId": room_id}),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    winner = first if first.status_code == 201 else second
    listed = (await stack.api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    assert [r["recordingId"] for r in listed] == [winner.json()["recordingId"]]
    await stack.api.post(f"/api/v1/recordings/{winner.json()['recordingId']}/stop")
    await wait_for_status(stack.api, winner.json()["recordingId"], {"complete"})


async def test_a_recorder_that_lost_the_recording_fails_it_at_once(
    stacks: StackFactory, scripted: ScriptedRecordingServer
) -> None:
    stack, room_id = await scripted_room(stacks, scripted)
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    scripted.stop_status = 404

    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    failed = await wait_for_status(stack.api, recording_id, {"failed", "complete"}, timeout=30)
    assert (failed["status"], failed["error"]) == ("failed", "recorder_failed")
    assert "404 on stop" in failed["details"]


async def test_a_large_upload_streams_with_flat_memory(
    stacks: StackFactory, scripted: ScriptedRecordingServer, tmp_path: Path
) -> None:
    stack, room_id = await scripted_room(stacks, scripted)
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    assert (await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    await scripted.wait_for("stop")

    # A real MP4 and 256 MiB of trailing bytes: the recording server's multipart body, made as it is sent.
    head, size = mp4_bytes(tmp_path), 256 * 2**20
    boundary = "callrec-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="owner"\r\n\r\napi-key\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="call.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode() + head
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = signing.signed_headers(SECRET, room_id.encode()) | {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }
    with PeakRss() as memory:
        stored = await stack.api.post(f"{OCS}/recording/{room_id}/store", content=body(), headers=headers)
    assert stored.status_code == 200, stored.text
    # Client and server share this process: 256 MiB went through it, memory grew by a small fraction of that.
    assert memory.growth < 64 * 2**20, f"grew {memory.growth / 2**20:.1f} MiB"

    # Every byte arrived: players ignore what follows an MP4's last box, so it is stored as it came.
    done = await wait_for_status(stack.api, recording_id, {"failed", "complete"})
    assert (done["status"], done["size"]) == ("complete", len(head) + size)
    assert await stack.store.list_keys("staging/") == []


async def test_a_recorder_that_falls_silent_is_aborted(stacks: StackFactory, scripted: ScriptedRecordingServer) -> None:
    stack = await stacks.start(
        recorder=False,
        egress="talk",
        talk_recording_server=f"http://127.0.0.1:{scripted.port}",
        recorder_silence_timeout_s=1.5,
    )
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    recording_id = await start_with_scripted_recorder(stack.api, scripted, room_id)
    progress = {"token": room_id, "recordingId": recording_id, "duration": 1.0, "bytes": 1000}
    for _ in range(3):
        assert (await backend_callback(stack.api, SECRET, "progress", progress)).status_code == 200
        await asyncio.sleep(1)
    assert (await stack.api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "active"

    aborted = await wait_for_status(stack.api, recording_id, {"aborted", "failed", "complete"})
    assert (aborted["status"], aborted["error"], aborted["errorCode"]) == ("aborted", "recorder_silent", 408)
    assert [r["type"] for r in scripted.requests] == ["start", "stop"]
    await outcome(stack.client.get_workflow_handle(recording_id))
    told = (await stack.api.get("/api/v1/notifications", params={"roomId": room_id})).json()["notifications"]
    assert [(n["subject"], n["recordingId"]) for n in told] == [("recording_failed", recording_id)]
    assert "stopped reporting progress" in told[0]["message"]


async def test_the_built_in_recorder_reports_progress_and_is_not_given_up(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder_silence_timeout_s=1.0, share_offer_expiry_s=0.5)  # it reports every 0.25 s
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    done = await record(stack.api, room_id, seconds=3)
    assert done["status"] == "complete", done
    state = await outcome(stack.client.get_workflow_handle(done["recordingId"]))
    assert state.status == "complete"
