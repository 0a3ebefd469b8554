"""The recorder pool with real recorder processes (`callrec recorder`) on the dev Temporal server: admission,
draining, progress while recording, and a recorder killed with SIGKILL mid-recording."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from sqlalchemy import select

from callrec.domain.layout import Layout
from callrec.domain.settings import Settings
from callrec.media.testsignals import COLORS
from callrec.storage.rows import SlotRow
from tests.conftest import Stack, StackFactory, free_port, make_settings
from tests.e2e.test_whip_recording import wait_for_call
from tests.helpers import create_room, join, wait_for_status
from tests.media_checks import nearest, sample_video, tile_centres

# Small pictures keep six recordings cheap on two cores; the capacity is set to two of them.
ENCODING = {"video": {"width": 320, "height": 180, "framerate": 15, "keyFrameInterval": 1, "bitrate": 300}}
COST = 320 * 180 * 15 / (1280 * 720 * 30)
SEGMENT_S = 1.0


@dataclass
class RecorderProcess:
    id: str
    url: str
    env: dict[str, str]
    process: asyncio.subprocess.Process
    workdir: Path


def recorder_env(settings: Settings, recorder_id: str, port: int, capacity: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    values: dict[str, Any] = {
        "data_dir": settings.data_dir,
        "recording_secret": settings.recording_secret,
        "publish_secret": settings.publish_secret,
        "api_url": settings.api_url,
        "temporal_address": settings.temporal_address,
        "recorder_port": port,
        "recorder_id": recorder_id,
        "recorder_capacity": capacity,
        "segment_s": SEGMENT_S,
        "s3_endpoint": settings.s3_endpoint,
        "s3_access_key": settings.s3_access_key,
        "s3_secret_key": settings.s3_secret_key,
        "s3_bucket": settings.s3_bucket,
    }
    env |= {f"CALLREC_{k.upper()}": str(v) for k, v in values.items() if v is not None}
    return env


class Pool:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.recorders: dict[str, RecorderProcess] = {}

    async def spawn(self, recorder_id: str, capacity: float = 2 * COST) -> RecorderProcess:
        port = free_port()
        env = recorder_env(self.stack.settings, recorder_id, port, capacity)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callrec.cli", "recorder", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        workdir = Path(self.stack.settings.data_dir) / "recorder" / recorder_id
        found = RecorderProcess(recorder_id, f"http://127.0.0.1:{port}", env, process, workdir)
        self.recorders[recorder_id] = found
        spawned_ms = time.time() * 1000
        await self.until(
            lambda listed: (
                listed.get(recorder_id, {}).get("state") == "active" and listed[recorder_id]["lastSeen"] > spawned_ms
            ),
            60,
        )
        return found

    async def listed(self) -> dict[str, dict[str, Any]]:
        answer = await self.stack.api.get("/api/v1/recorders")
        assert answer.status_code == 200, answer.text
        return {r["id"]: r for r in answer.json()["recorders"]}

    async def until(self, check: Any, timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            listed = await self.listed()
            if check(listed):
                return listed
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.2)

    async def holder(self, recording_id: str) -> str | None:
        async with self.stack.catalog.sessions() as session:
            return await session.scalar(select(SlotRow.recorder_id).where(SlotRow.recording_id == recording_id))

    async def close(self) -> None:
        for recorder in self.recorders.values():
            if recorder.process.returncode is None:
                recorder.process.kill()
                await recorder.process.wait()


@pytest.fixture
async def pool(stacks: StackFactory) -> AsyncIterator[Pool]:
    stack = await stacks.start(recorder=False, share_offer_expiry_s=2)  # their workflows close soon after
    found = Pool(stack)
    yield found
    await found.close()


async def start(api: httpx.AsyncClient, room_id: str) -> httpx.Response:
    return await api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"encoding": ENCODING}})


async def new_room(api: httpx.AsyncClient, name: str) -> str:
    room_id = await create_room(api, name)
    await join(api, room_id, "Alice")
    return room_id


async def test_six_recordings_spread_over_three_recorders_the_seventh_is_refused_and_a_drained_one_finishes_its_own(
    pool: Pool,
) -> None:
    api = pool.stack.api
    for name in ("rec-a", "rec-b", "rec-c"):
        await pool.spawn(name)
    rooms = [await new_room(api, f"Room {i}") for i in range(7)]
    recordings = []
    for room_id in rooms[:6]:
        started = await start(api, room_id)
        assert started.status_code == 201, started.text
        recordings.append(started.json()["recordingId"])
    listed = await pool.listed()
    assert {name: r["recordings"] for name, r in listed.items()} == {"rec-a": 2, "rec-b": 2, "rec-c": 2}
    assert all(r["load"] == pytest.approx(2 * COST, abs=1e-3) for r in listed.values())

    refused = await start(api, rooms[6])
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "no_recorder_capacity"
    assert refused.headers["Retry-After"]
    nothing = await api.get("/api/v1/recordings", params={"roomId": rooms[6]})
    assert nothing.json()["recordings"] == []  # never a half-started recording

    # Drain rec-a, then stop one of its recordings: it has room, yet takes nothing new.
    drained = pool.recorders["rec-a"]
    drain = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callrec.cli", "recorder", "drain",
        env=drained.env | {"CALLREC_RECORDER_URL": drained.url}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await drain.communicate()
    assert drain.returncode == 0 and b"draining" in out
    await pool.until(lambda listed: listed["rec-a"]["state"] == "draining", 15)
    on_a = [r for r in recordings if await pool.holder(r) == "rec-a"]
    assert len(on_a) == 2
    assert (await api.post(f"/api/v1/recordings/{on_a[0]}/stop")).status_code == 202
    assert (await wait_for_status(api, on_a[0], {"complete", "failed"}))["status"] == "complete"
    again = await start(api, rooms[6])
    assert again.status_code == 503 and again.json()["code"] == "no_recorder_capacity", again.text

    # Its last recording still records, then completes; with nothing left, the drained recorder exits by itself.
    assert (await api.get(f"/api/v1/recordings/{on_a[1]}")).json()["status"] == "active"
    assert (await api.post(f"/api/v1/recordings/{on_a[1]}/stop")).status_code == 202
    assert (await wait_for_status(api, on_a[1], {"complete", "failed"}))["status"] == "complete"
    assert await asyncio.wait_for(drained.process.wait(), 30) == 0

    # A slot freed elsewhere takes the seventh.
    other = [r for r in recordings if await pool.holder(r) == "rec-b"][0]
    assert (await api.post(f"/api/v1/recordings/{other}/stop")).status_code == 202
    await wait_for_status(api, other, {"complete", "failed"})
    seventh = await start(api, rooms[6])
    assert seventh.status_code == 201, seventh.text
    assert await pool.holder(seventh.json()["recordingId"]) == "rec-b"
    for recording_id in [*recordings, seventh.json()["recordingId"]]:
        if (await api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "active":
            await api.post(f"/api/v1/recordings/{recording_id}/stop")
    for recording_id in recordings:
        assert (await wait_for_status(api, recording_id, {"complete", "failed"}))["status"] == "complete"


def decode_all(path: Path) -> tuple[float, int]:
    """Decodes every video frame (an error fails the test); the duration by the last frame and the frame count."""
    frames, last = 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames += 1
            last = max(last, float(frame.pts * stream.time_base) if frame.pts is not None else last)
    return last, frames


async def download(api: httpx.AsyncClient, recording_id: str, path: Path) -> Path:
    media = await api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200, media.text
    path.write_bytes(media.content)
    return path


async def test_a_recorder_killed_mid_recording_is_replaced_and_the_file_holds_both_sides_of_the_gap(
    pool: Pool, tmp_path: Path
) -> None:
    api = pool.stack.api
    first = await pool.spawn("rec-a")
    room_id = await new_room(api, "Crash")
    started = await start(api, room_id)
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    began = time.monotonic()
    await pool.spawn("rec-b")  # after the start: the recording is on rec-a
    assert await pool.holder(recording_id) == "rec-a"

    # Progress while active: duration and size grow between two GETs.
    await asyncio.sleep(3 * SEGMENT_S + 1)
    one = (await api.get(f"/api/v1/recordings/{recording_id}")).json()
    await asyncio.sleep(3 * SEGMENT_S)
    two = (await api.get(f"/api/v1/recordings/{recording_id}")).json()
    assert one["status"] == two["status"] == "active"
    assert 0 < one["duration"] < two["duration"] and 0 < one["size"] < two["size"], (one, two)

    partial = list(first.workdir.iterdir())
    assert partial  # the part it was writing
    first.process.send_signal(signal.SIGKILL)
    await first.process.wait()
    killed = time.monotonic()
    prefix = f"staging/{recording_id}/parts/0001-"  # the part after the first one
    while not [
        k
        for k in await pool.stack.store.list_keys(f"staging/{recording_id}/parts/")
        if k.startswith(prefix) and "/chunk-" in k
    ]:
        assert time.monotonic() - killed < 15, "no other recorder went on within 15 s"
        await asyncio.sleep(0.2)
    assert await pool.holder(recording_id) == "rec-b"
    assert (await api.get(f"/api/v1/recordings/{recording_id}")).json()["status"] == "active"

    await asyncio.sleep(4)
    assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
    wall = time.monotonic() - began
    rec = await wait_for_status(api, recording_id, {"complete", "failed"})
    assert rec["status"] == "complete", rec
    [gap] = rec["gaps"]
    before, after = gap["offset"], rec["duration"] - gap["offset"]
    assert before >= 6 and after >= 3, rec  # media from before and after the crash
    assert 3 <= gap["duration"] <= 16, gap
    assert abs(rec["duration"] + gap["duration"] - wall) < 3, (rec, wall)  # the file is the wall time but the gap
    duration, frames = decode_all(await download(api, recording_id, tmp_path / "joined.mp4"))
    assert abs(duration - rec["duration"]) < 0.5 and frames >= 15 * (rec["duration"] - 1)
    assert await pool.holder(recording_id) is None  # its slot went back
    assert not await pool.stack.store.list_keys(f"staging/{recording_id}/")  # the parts are gone

    # The killed recorder comes back under its name: the partial file it left is removed.
    assert all(p.exists() for p in partial)
    await pool.spawn("rec-a")
    assert not any(p.exists() for p in partial)


async def test_with_no_recorder_to_take_over_the_recording_fails_with_what_was_stored(
    pool: Pool, tmp_path: Path
) -> None:
    api = pool.stack.api
    only = await pool.spawn("rec-only")
    room_id = await new_room(api, "Alone")
    started = await start(api, room_id)
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    await asyncio.sleep(4 * SEGMENT_S + 1)
    only.process.send_signal(signal.SIGKILL)
    await only.process.wait()
    rec = await wait_for_status(api, recording_id, {"complete", "failed", "aborted"}, timeout=60)
    assert rec["status"] == "failed" and rec["error"] == "recorder_lost" and rec["errorCode"] == 502, rec
    assert "no other recorder" in rec["details"]
    assert rec["duration"] >= 2 and rec["size"] > 0, rec
    duration, frames = decode_all(await download(api, recording_id, tmp_path / "kept.mp4"))
    assert duration >= 2 and frames > 0
    assert await pool.holder(recording_id) is None


async def test_a_webrtc_publisher_follows_its_recording_to_the_recorder_that_took_over(
    pool: Pool, tmp_path: Path
) -> None:
    api = pool.stack.api
    await pool.spawn("rec-a")
    room_id = await create_room(api, "Camera")
    minted = await api.post(
        f"/api/v1/rooms/{room_id}/publish-token", json={"participantId": "cam", "participantName": "Cam"}
    )
    assert minted.status_code == 201, minted.text
    grant = minted.json()
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callrec.media.testsignals", "--whip-url", grant["whipUrl"], "--token", grant["token"],
        "--color", "yellow", "--seconds", "120", "--width", "160", "--height", "90",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_for_call(api, room_id, {"cam"}, timeout=30)
        await pool.spawn("rec-b")
        started = await start(api, room_id)
        assert started.status_code == 201, started.text
        recording_id = started.json()["recordingId"]
        assert await pool.holder(recording_id) == "rec-a"  # where its publisher is
        await asyncio.sleep(5)
        pool.recorders["rec-a"].process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while await pool.holder(recording_id) != "rec-b":
            assert time.monotonic() - killed < 15
            await asyncio.sleep(0.2)
        await asyncio.sleep(12)  # the publisher reconnects through the API, which sends it to rec-b
        assert (await api.post(f"/api/v1/recordings/{recording_id}/stop")).status_code == 202
        rec = await wait_for_status(api, recording_id, {"complete", "failed"})
        assert rec["status"] == "complete", rec
        [gap] = rec["gaps"]
        path = await download(api, recording_id, tmp_path / "camera.mp4")
    finally:
        publisher.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(publisher.communicate(), 20)
    assert b"connected 2 time(s)" in output, output.decode()
    width, height = ENCODING["video"]["width"], ENCODING["video"]["height"]
    [centre] = tile_centres(Layout.GRID, 1, width, height)
    frames = sample_video(path, {"cam": [centre]})
    yellow = {"yellow": COLORS["yellow"]}
    before = [c for t, c in frames if 1 <= t <= gap["offset"] - 0.5]
    after = [c for t, c in frames if t >= rec["duration"] - 3]
    assert before and after
    assert sum(nearest(c["cam"][0], yellow) == "yellow" for c in before) >= 0.8 * len(before)
    assert sum(nearest(c["cam"][0], yellow) == "yellow" for c in after) >= 0.8 * len(after)


async def test_a_recorder_whose_api_is_gone_says_its_registration_got_no_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from callrec.servers import build_recorder

    settings = make_settings(tmp_path, "127.0.0.1:7233", api_port=free_port())  # nothing listens on the API's port
    async with httpx.AsyncClient(timeout=5) as http:
        _, node = await build_recorder(settings, http)
        assert not await node.register()
    said = [r.getMessage() for r in caplog.records if r.name == "callrec.recorder.pool"]
    assert said == [f"registration with {settings.api_url}: no answer after 3 attempts (is the API running?)"]
