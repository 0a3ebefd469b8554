"""Talk-style start/stop by room token, in OCS envelopes, and audio-only recordings as Ogg/Opus files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from callrec.media.probe import probe_recording
from tests.conftest import StackFactory
from tests.helpers import OCS, create_room, join, wait_for_status
from tests.test_access_helpers import member_client


async def room_status(api: httpx.AsyncClient, room_id: str) -> int:
    status: int = (await api.get(f"/api/v1/rooms/{room_id}")).json()["callRecording"]
    return status


async def until_status(api: httpx.AsyncClient, room_id: str, expected: int) -> None:
    for _ in range(200):
        if await room_status(api, room_id) == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"callRecording never became {expected}")


async def test_talk_start_and_stop_errors(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    talk = f"{OCS}/recording/{room_id}"
    headers = {"OCS-APIRequest": "true"}

    async with httpx.AsyncClient(base_url=str(api.base_url), headers=headers) as guest:
        assert (await guest.post(talk, json={"status": 1})).status_code == 401
    speaker = await member_client(api, room_id, "speaker")
    forbidden = await speaker.post(talk, json={"status": 1}, headers=headers)
    assert forbidden.status_code == 403 and forbidden.json()["ocs"]["meta"]["statuscode"] == 403
    await speaker.aclose()

    assert (await api.post(f"{OCS}/recording/no-such-room", json={"status": 1})).status_code == 404
    for body in ({"status": 3}, {"status": "x"}, {}):
        bad = await api.post(talk, json=body, headers=headers)
        assert (bad.status_code, bad.json()["ocs"]["data"]) == (400, {"error": "status"})
    no_call = await api.post(talk, data={"status": "1"}, headers=headers)  # form-encoded, as Talk clients send
    assert (no_call.status_code, no_call.json()["ocs"]["data"]) == (400, {"error": "call"})
    assert (await api.delete(talk, headers=headers)).json()["ocs"]["data"] == {"error": "call"}

    await join(api, room_id, "Alice")
    await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": False}}})
    disabled = await api.post(talk, json={"status": 1}, headers=headers)
    assert (disabled.status_code, disabled.json()["ocs"]["data"]) == (400, {"error": "config"})
    await api.put(f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"enabled": True}}})

    assert (await api.post(talk, json={"status": 1}, headers=headers)).status_code == 200
    again = await api.post(talk, json={"status": 2}, headers=headers)
    assert (again.status_code, again.json()["ocs"]["data"]) == (400, {"error": "recording"})
    await until_status(api, room_id, 1)
    assert (await api.delete(talk, headers=headers)).status_code == 200
    listed = (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"]
    assert (await wait_for_status(api, listed[0]["recordingId"], {"complete", "failed"}))["status"] == "complete"
    assert await room_status(api, room_id) == 0


async def test_an_audio_recording_is_an_ogg_opus_file(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    await join(api, room_id, "Alice", "Bob")
    moderator = await member_client(api, room_id, "moderator")
    talk = f"{OCS}/recording/{room_id}"

    started = await moderator.post(talk, json={"status": 2}, headers={"OCS-APIRequest": "true"})
    assert started.status_code == 200 and started.json()["ocs"]["meta"]["status"] == "ok"
    assert await room_status(api, room_id) in (4, 2)  # starting audio, or already recording
    await until_status(api, room_id, 2)
    await asyncio.sleep(1.5)
    assert (await moderator.delete(talk)).status_code == 200
    await moderator.aclose()

    recording = (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"][0]
    done = await wait_for_status(api, recording["recordingId"], {"complete", "failed"})
    assert done["status"] == "complete", done
    assert done["filename"].endswith(".ogg") and done["duration"] >= 1.3
    media = await api.get(f"/api/v1/recordings/{done['recordingId']}/media")
    assert media.status_code == 200 and media.headers["Content-Type"] == "audio/ogg"
    path = tmp_path / "call.ogg"
    path.write_bytes(media.content)
    info = probe_recording(path, "audio")
    assert (info.container, info.audio_codec, info.video_codec) == ("ogg", "opus", None)
    assert await room_status(api, room_id) == 0
