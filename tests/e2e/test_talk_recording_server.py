"""CALLREC_EGRESS=talk: callrec drives an external Talk recording server as the Talk app does (the stand-in
recording server: `tests/talk_server.py`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callrec.domain import signing
from callrec.domain.layout import Layout, RenderSpec
from callrec.media.render import render_file
from tests.conftest import SECRET, StackFactory
from tests.helpers import OCS, backend_callback, wait_for_status
from tests.talk_server import (
    MAX_MESSAGE_SIZE,
    OCS_HEADERS,
    TalkRecordingServer,
    assert_signed,
    talk_server,
    talk_stack,
    talk_start,
    until_room_status,
)

__all__ = ["talk_server"]  # the fixture


async def test_talk_egress_speaks_the_talk_recording_server_protocol(
    stacks: StackFactory, talk_server: TalkRecordingServer, tmp_path: Path
) -> None:
    api, room_id, public_url = await talk_stack(stacks, talk_server)
    recording = await talk_start(api, talk_server, room_id)
    assert recording["status"] == "active"

    start = talk_server.of_type("start")[-1]
    assert start.token == room_id
    assert_signed(start, public_url)
    assert len(start.raw) <= MAX_MESSAGE_SIZE
    assert list(start.body) == ["type", "start"]
    fields = start.body["start"]
    assert list(fields) == ["status", "owner", "actor"]  # Talk's body, in Talk's order, nothing else
    assert fields["status"] == 1
    assert isinstance(fields["owner"], str) and fields["owner"]
    assert fields["actor"] == {"type": "users", "id": fields["owner"]}
    assert b": " not in start.raw and b", " not in start.raw  # compact, as PHP's json_encode

    stopped = await api.delete(f"{OCS}/recording/{room_id}", headers=OCS_HEADERS)
    assert stopped.status_code == 200, stopped.text
    stop = await talk_server.wait_for("stop")
    assert stop.token == room_id
    assert_signed(stop, public_url)
    assert stop.body == {"type": "stop", "stop": {"actor": {"type": "users", "id": "api-key"}}}  # who stopped it
    assert talk_server.services == set()

    # The recording server's side after a stop: `stopped`, then the file with the start's owner.
    assert (await backend_callback(api, SECRET, "stopped", {"token": room_id})).status_code == 200
    path = tmp_path / "Recording 2024-05-06 10-11-12.mp4"
    spec = RenderSpec(width=320, height=180, framerate=10, video_bitrate_kbps=300, h264_profile="high")
    await asyncio.to_thread(render_file, path, Layout.GRID, [("alice", "Alice"), ("bob", "Bob")], spec, 1.0)
    stored = await api.post(
        f"{OCS}/recording/{room_id}/store",
        headers=OCS_HEADERS | signing.signed_headers(SECRET, room_id.encode()),
        data={"owner": fields["owner"]},
        files={"file": (path.name, path.read_bytes())},
    )
    assert stored.status_code == 200, stored.text
    done = await wait_for_status(api, recording["recordingId"], {"complete", "failed"})
    assert done["status"] == "complete", done
    assert len(talk_server.of_type("start")) == 1 and len(talk_server.of_type("stop")) == 1
    # The Talk protocol carries no encoding: while recording the room's is shown, once stored what the file holds.
    asked = (await api.get(f"/api/v1/rooms/{room_id}/config")).json()["recording"]["encoding"]
    assert recording["encoding"] == asked
    used = {"video": {"width": 320, "height": 180, "framerate": 10, "codec": "H264_HIGH"}, "audio": {"codec": "AAC"}}
    assert done["encoding"] == used
    assert (await api.get(f"/api/v1/recordings/{done['recordingId']}")).json()["encoding"] == used


async def test_a_404_to_stop_fails_the_recording_without_retrying(
    stacks: StackFactory, talk_server: TalkRecordingServer
) -> None:
    api, room_id, _ = await talk_stack(stacks, talk_server)
    recording = await talk_start(api, talk_server, room_id)
    talk_server.services.clear()  # the recording server restarted: it knows no recording any more

    stopped = await api.delete(f"{OCS}/recording/{room_id}", headers=OCS_HEADERS)
    assert stopped.status_code == 200, stopped.text
    failed = await wait_for_status(api, recording["recordingId"], {"complete", "failed"})
    assert (failed["status"], failed["error"], failed["errorCode"]) == ("failed", "recorder_failed", 500)
    assert "404" in failed["details"]
    assert len(talk_server.of_type("stop")) == 1  # a 4xx is final, as in Talk: no retry
    await until_room_status(api, room_id, 5)  # failed; the next start behaves as from 0
