"""A call recorded end to end: real Temporal dev server, worker, API and recorder over HTTP, real MP4 files."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from callrec.domain.layout import Layout
from callrec.domain.recording import RECORDING_ID
from callrec.media.probe import probe_recording
from callrec.media.render import participant_color, tile_rects
from callrec.workflows.recording import RecordingWorkflow
from tests.conftest import StackFactory, s3_overrides
from tests.helpers import create_room, join, record, stored_keys, wait_for_status


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def close_to(pixel: np.ndarray, color: tuple[int, int, int], tolerance: int = 30) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(color)) <= tolerance))


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_record_a_call_end_to_end(stacks: StackFactory, s3_endpoint: str, backend: str, tmp_path: Path) -> None:
    stack = await stacks.start(**(s3_overrides(s3_endpoint) if backend == "s3" else {}))
    api = stack.api
    room_id = await create_room(api, "Weekly sync")
    await join(api, room_id, "Alice", "Bob")

    started = await api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201, started.text
    body = started.json()
    recording_id = body["recordingId"]
    assert body["status"] == "active"
    assert started.headers["Location"] == f"{api.base_url}/api/v1/recordings/{recording_id}"  # absolute, as Meet's
    assert RECORDING_ID.match(recording_id) and recording_id.startswith(f"{room_id}--EG_")
    assert (await api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "active"

    await asyncio.sleep(2)
    stopped = await api.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202
    assert stopped.json()["status"] == "ending"
    assert stopped.json()["endDate"] >= body["startDate"]

    rec = await wait_for_status(api, recording_id, {"complete", "failed"})
    assert rec["status"] == "complete", rec
    # No errorCode, error or details: left out (not null) when there is none, as in Meet.
    assert set(rec) == {
        "recordingId", "roomId", "roomName", "status", "layout", "encoding", "filename",
        "startDate", "endDate", "duration", "size",
    }  # fmt: skip
    assert rec["roomName"] == "Weekly sync" and rec["layout"] == "grid"
    assert rec["filename"] == f"{recording_id}.mp4"
    assert rec["startDate"] < rec["endDate"]
    assert 1.5 <= rec["duration"] <= 6

    full = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert full.status_code == 200
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Content-Type"] == "video/mp4"
    media = full.content
    size = rec["size"]
    assert len(media) == size == int(full.headers["Content-Length"])

    for header, expected, content_range in [
        ("bytes=100-199", media[100:200], f"bytes 100-199/{size}"),
        ("bytes=0-0", media[:1], f"bytes 0-0/{size}"),
        (f"bytes={size - 10}-", media[-10:], f"bytes {size - 10}-{size - 1}/{size}"),
        (f"bytes=5-{size + 1000}", media[5:], f"bytes 5-{size - 1}/{size}"),
    ]:
        part = await api.get(f"/api/v1/recordings/{recording_id}/media", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == expected, header
        assert part.headers["Content-Range"] == content_range
    suffix = await api.get(f"/api/v1/recordings/{recording_id}/media", headers={"Range": "bytes=-50"})
    assert suffix.status_code == 422  # OpenVidu Meet's rule: `bytes=start-[end]` only
    unsatisfiable = await api.get(f"/api/v1/recordings/{recording_id}/media", headers={"Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.json()["message"].endswith(f"File size: {size}")

    path = tmp_path / "downloaded.mp4"
    path.write_bytes(media)
    info = probe_recording(path, "video")
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 320, 180)
    row = await stack.catalog.get_recording(recording_id)
    assert row is not None and row.sha256 == hashlib.sha256(media).hexdigest()
    assert await stack.store.list_keys(f"recordings/{room_id}/") == stored_keys(room_id, recording_id)
    assert await stack.store.list_keys("staging/") == []

    # The history this run made replays against the current workflow code.
    history = await stack.client.get_workflow_handle(recording_id).fetch_history()
    replayer = Replayer(workflows=[RecordingWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_layout_override_changes_the_rendered_frames(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api, layout="grid")
    await join(stack.api, room_id, "Alice", "Bob")

    grid = await record(stack.api, room_id)
    speaker = await record(stack.api, room_id, layout="speaker")
    assert (grid["status"], grid["layout"]) == ("complete", "grid")
    assert (speaker["status"], speaker["layout"]) == ("complete", "speaker")

    frames = {}
    for rec in (grid, speaker):
        path = tmp_path / f"{rec['layout']}.mp4"
        path.write_bytes((await stack.api.get(f"/api/v1/recordings/{rec['recordingId']}/media")).content)
        frames[rec["layout"]] = first_frame(path)

    alice, bob = participant_color("alice"), participant_color("bob")
    width, height = 320, 180
    for layout, frame in frames.items():
        tiles = tile_rects(Layout(layout), 2, width, height)
        (ax, ay), (bx, by) = [(t.x + t.width // 2, t.y + t.height // 2) for t in tiles[:2]]
        assert close_to(frame[ay, ax], alice), layout
        assert close_to(frame[by, bx], bob), layout
    # At 60 % of the width: Bob's half of the grid, but Alice's large tile in the speaker layout.
    x, y = int(width * 0.6), height // 2
    assert close_to(frames["grid"][y, x], bob)
    assert close_to(frames["speaker"][y, x], alice)


async def test_ending_the_call_stops_and_stores_the_recording(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    started = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert started.status_code == 201
    await asyncio.sleep(1.5)

    ended = await stack.api.delete(f"/api/v1/rooms/{room_id}/call")
    assert ended.status_code == 204 and ended.content == b""
    assert "content-type" not in ended.headers and "content-length" not in ended.headers  # no content to describe
    rec = await wait_for_status(stack.api, started.json()["recordingId"], {"complete", "failed"})
    assert rec["status"] == "complete" and rec["size"] > 0
    assert (await stack.api.get(f"/api/v1/rooms/{room_id}/call")).status_code == 404


async def test_recordings_survive_a_restart(temporal_env: object, tmp_path: Path) -> None:
    first = StackFactory(temporal_env, tmp_path)  # type: ignore[arg-type]
    stack = await first.start()
    room_id = await create_room(stack.api)
    await join(stack.api, room_id, "Alice")
    rec = await record(stack.api, room_id)
    media = (await stack.api.get(f"/api/v1/recordings/{rec['recordingId']}/media")).content
    await first.close()

    second = StackFactory(temporal_env, tmp_path)  # type: ignore[arg-type]
    try:
        again = await second.start()
        listed = (await again.api.get("/api/v1/recordings", params={"roomId": room_id})).json()
        assert [r["recordingId"] for r in listed["recordings"]] == [rec["recordingId"]]
        assert listed["recordings"][0]["status"] == "complete"
        replayed = await again.api.get(f"/api/v1/recordings/{rec['recordingId']}/media")
        assert replayed.status_code == 200 and replayed.content == media
    finally:
        await second.close()
