"""Talk-style start/stop with the built-in recorder: audio-only recordings are Ogg/Opus files. (Talk's answers and
status flow: test_talk_status_flow.py.)"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
from PIL import Image

from callrec.media.previews import WAVEFORM_SIZE
from callrec.media.probe import probe_recording
from tests.conftest import StackFactory
from tests.helpers import OCS, create_room, join, member_headers, stored_keys, wait_for_status
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
    # Its poster is a waveform; there are no seek thumbnails for a recording without pictures.
    poster = await api.get(f"/api/v1/recordings/{done['recordingId']}/poster")
    assert poster.status_code == 200 and poster.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(poster.content)).size == WAVEFORM_SIZE
    assert (await api.get(f"/api/v1/recordings/{done['recordingId']}/thumbnails.vtt")).status_code == 404
    assert await stack.store.list_keys(f"recordings/{room_id}/") == stored_keys(room_id, done["recordingId"], "ogg")
    assert await room_status(api, room_id) == 0


async def test_a_member_who_publishes_is_named_in_the_chat_as_the_call_shows_it(stacks: StackFactory) -> None:
    stack = await stacks.start()
    api = stack.api
    room_id = await create_room(api)
    headers = await member_headers(api, room_id, "Alice")
    async with httpx.AsyncClient(base_url=str(api.base_url), headers=headers) as alice:
        grant = await alice.post(f"/api/v1/rooms/{room_id}/publish-token", json={"participantName": "Alice A."})
        assert grant.status_code == 201, grant.text
        # Her publisher is in the call by the id her publish token names, as the recorder reports its presence.
        presence = [{"id": grant.json()["participantId"], "name": "Alice A.", "role": "moderator"}]
        assert (await api.put(f"/api/v1/rooms/{room_id}/call", json={"participants": presence})).status_code == 200
        talk = f"{OCS}/recording/{room_id}"
        assert (await alice.post(talk, json={"status": 2}, headers={"OCS-APIRequest": "true"})).status_code == 200
        await until_status(api, room_id, 2)
        assert (await alice.delete(talk, headers={"OCS-APIRequest": "true"})).status_code == 200
    await until_status(api, room_id, 0)
    messages = (await api.get(f"/api/v1/rooms/{room_id}/chat")).json()["messages"]
    named = [(m["systemMessage"], m["actorId"].startswith("member:"), m["actorDisplayName"]) for m in messages]
    assert named == [("audio_recording_started", True, "Alice A."), ("audio_recording_stopped", True, "Alice A.")]
    assert messages[0]["actorId"] == messages[1]["actorId"]
