"""The built-in recorder recording real WebRTC media: real time, A/V sync, WHIP connect time.

One run: the recorder (`callrec recorder`, its own process), this process as its back end (callbacks and the
upload, no API and no Temporal: the recorder is what is measured), and 4 aiortc publishers in a third process,
each sending 640x360 at 15 fps with its own colour, a steady tone, and every 2 s a white flash and a beep of its
own pitch at the same capture instant. The recorder records a 1280x720 30 fps grid of them.

- `recorder_realtime`: media seconds of the file / wall seconds between `started` and the stop, with the share
  of output frames repeated because compositing fell behind, CPU seconds per media second and peak RSS.
- `av_sync_offset_ms`: p95 of |flash - beep| over every flash of every publisher, read from the recorded file
  (the video side is quantised to the 33 ms output frame).
- `whip_connect_ms`: p50 from a publisher's WHIP call (its ICE gathering, the POST, the answer) until the
  recorder reports its first media (the `publisher` `joined` callback).

`python -m bench.recorder publish SPEC` is the publishers' process (SPEC: JSON list of publishers).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request

from bench.common import (
    BenchResult,
    PeakRss,
    Temporal,
    cpu_seconds,
    free_port,
    median,
    percentile,
    spawn,
    stop_process,
    wait_http,
)
from callrec.domain import publish, signing
from callrec.domain.layout import Layout
from callrec.media.render import tile_rects

SECRET = "bench-recording-secret-0123456789abcdef"
PUBLISH_SECRET = "bench-publish-secret-0123456789abcdef01"
OCS = "/ocs/v2.php/apps/spreed/api/v1"
WIDTH, HEIGHT, FPS = 1280, 720, 30
FLASH_EVERY_S = 2.0
# colour (low luma, so a white flash stands out), steady tone, beep pitch
PUBLISHERS = [("red", 300.0, 1500.0), ("green", 500.0, 2300.0), ("blue", 700.0, 3100.0), ("magenta", 900.0, 3900.0)]


class Backend:
    """What the recorder calls back and uploads to; every event with its monotonic arrival time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.file: Path | None = None
        app = Quart("bench-backend")

        @app.post(f"{OCS}/recording/backend")
        async def callback() -> tuple[str, int]:
            message = json.loads(await request.get_data())
            self.events.append((time.monotonic(), message["type"], message[message["type"]]))
            self.changed.set()
            return "{}", 200

        @app.post(f"{OCS}/recording/<token>/store")
        async def store(token: str) -> tuple[str, int]:
            upload = (await request.files)["file"]
            path = self.workdir / (upload.filename or "recording")
            await upload.save(path)
            self.file = path
            self.changed.set()
            return "{}", 200

        self.app = app

    async def wait(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the recorder did not get there in {timeout:g} s: {self.events[-5:]}")
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    def first(self, kind: str, **match: str) -> float | None:
        for at, event_kind, payload in self.events:
            if event_kind == kind and all(_get(payload, k) == v for k, v in match.items()):
                return at
        return None


def _get(payload: dict[str, Any], dotted: str) -> object:
    value: object = payload
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def signed_post(http: httpx.AsyncClient, url: str, message: dict[str, Any], backend: str) -> None:
    body = json.dumps(message).encode()
    headers = signing.signed_headers(SECRET, body) | {
        "Content-Type": "application/json",
        signing.BACKEND_HEADER: backend,
    }
    answer = await http.post(url, content=body, headers=headers)
    answer.raise_for_status()


# ------------------------------------------------------------------------- analysis of the recorded file


def _onsets(times: np.ndarray[Any, Any], active: np.ndarray[Any, Any], gap_s: float = 0.5) -> list[float]:
    """Times where `active` turns on after at least `gap_s` off."""
    found: list[float] = []
    last_on = -1e9
    for t, on in zip(times, active, strict=True):
        if on:
            if t - last_on > gap_s:
                found.append(float(t))
            last_on = float(t)
    return found


def flash_onsets(path: Path, count: int) -> list[list[float]]:
    """Per grid tile (join order), the presentation times of frames where the tile turned white."""
    tiles = tile_rects(Layout.GRID, count, WIDTH, HEIGHT)
    times: list[float] = []
    lumas: list[list[float]] = [[] for _ in tiles]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            y = frame.to_ndarray(format="gray")
            times.append(float(frame.pts * (stream.time_base or 0)))
            for i, tile in enumerate(tiles):
                cx, cy, w, h = tile.x + tile.width // 2, tile.y + tile.height // 2, tile.width // 4, tile.height // 4
                lumas[i].append(float(y[cy - h : cy + h, cx - w : cx + w].mean()))
    t = np.array(times)
    return [_onsets(t, np.array(series) > 225) for series in lumas]


def beep_onsets(path: Path, pitch_hz: float) -> list[float]:
    """Times where a `pitch_hz` burst starts in the recorded mix (5 ms hops, 10 ms windows)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48_000)
        chunks: list[np.ndarray[Any, Any]] = []
        first_pts: float | None = None
        for frame in container.decode(stream):
            if first_pts is None and frame.pts is not None:
                first_pts = float(frame.pts * (stream.time_base or 0))
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    rate, window, hop = 48_000, 480, 240
    n = np.arange(window)
    probe = np.exp(-2j * np.pi * pitch_hz * n / rate) * np.hanning(window)
    starts = np.arange(0, max(0, len(samples) - window), hop)
    energy = np.array([abs(np.dot(samples[s : s + window], probe)) for s in starts])
    if energy.size == 0:
        return []
    times = (starts + window / 2) / rate + (first_pts or 0.0)
    return _onsets(times, energy > 0.3 * energy.max())


def sync_offsets_ms(path: Path) -> list[float]:
    offsets: list[float] = []
    for flashes, (_, _, pitch) in zip(flash_onsets(path, len(PUBLISHERS)), PUBLISHERS, strict=True):
        beeps = beep_onsets(path, pitch)
        for flash in flashes:
            nearest = min(beeps, key=lambda b: abs(b - flash), default=None)
            if nearest is not None and abs(nearest - flash) < 0.5:
                offsets.append((flash - nearest) * 1000)
    return offsets


def video_seconds(path: Path) -> tuple[float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.demux(stream) if _.size)
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else frames / FPS
    return duration, frames


# ------------------------------------------------------------------------- the run


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    seconds = 20.0 if quick else 60.0
    workdir.mkdir(parents=True, exist_ok=True)
    backend = Backend(workdir)
    backend_port, recorder_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    config = Config()
    config.bind = [f"127.0.0.1:{backend_port}"]
    config.accesslog = None
    stopping = asyncio.Event()
    server = asyncio.ensure_future(serve(backend.app, config, shutdown_trigger=stopping.wait))
    temporal = Temporal(workdir / "temporal")  # the recorder's pool side registers through it
    await temporal.ready()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")} | {
        "CALLREC_DATA_DIR": str(workdir / "data"),
        "CALLREC_RECORDING_SECRET": SECRET,
        "CALLREC_PUBLISH_SECRET": PUBLISH_SECRET,
        "CALLREC_RECORDER_PORT": str(recorder_port),
        "CALLREC_RECORDER_BACKENDS": json.dumps([backend_url]),
        "CALLREC_API_URL": backend_url,
        "CALLREC_TEMPORAL_ADDRESS": temporal.address,
        "CALLREC_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
    }
    recorder = spawn([sys.executable, "-m", "callrec.cli", "recorder"], workdir / "recorder.log", env)
    publishers = None
    room = f"bench-{uuid.uuid4().hex[:8]}"
    recorder_url = f"http://127.0.0.1:{recorder_port}"
    try:
        await wait_http(f"{recorder_url}/health", recorder)
        spec = []
        for i, (color, tone, beep) in enumerate(PUBLISHERS):
            who = publish.Publisher(room, f"pub{i}", color, "speaker", int(time.time()) + 3600)
            spec.append({"url": f"{recorder_url}/whip/{room}", "token": publish.mint(PUBLISH_SECRET, who),
                         "color": color, "tone": tone, "beep": beep, "seconds": seconds + 30})  # fmt: skip
        publishers = spawn(
            [sys.executable, "-m", "bench.recorder", "publish", json.dumps(spec)], workdir / "publishers.log", env
        )
        await backend.wait(
            lambda: all(backend.first("publisher", **{"participant.id": f"pub{i}"}) for i in range(4)), 60
        )
        log = workdir / "publishers.log"
        await backend.wait(lambda: log.read_text().startswith("["), 30)  # the publishers' POST times
        posted = json.loads(log.read_text().splitlines()[0])
        connect_ms = [
            (backend.first("publisher", **{"participant.id": f"pub{i}", "state": "joined"}) or 0) * 1000
            - posted[i] * 1000
            for i in range(len(PUBLISHERS))
        ]
        recording_id = f"rec{uuid.uuid4().hex[:8]}"
        start = {
            "type": "start",
            "start": {
                "status": 1,
                "owner": "bench",
                "actor": {"type": "users", "id": "bench"},
                "recordingId": recording_id,
                "layout": "grid",
                "encoding": {"video": {"width": WIDTH, "height": HEIGHT, "framerate": FPS}},
            },
        }
        async with httpx.AsyncClient(timeout=60) as http:
            await signed_post(http, f"{recorder_url}/api/v1/room/{room}", start, backend_url)
            await backend.wait(lambda: backend.first("started") is not None, 30)
            started = backend.first("started") or 0.0
            cpu_before = cpu_seconds(recorder.pid)
            with PeakRss(recorder.pid, interval=0.05) as rss:
                await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
                stop_sent = time.monotonic()
                stop = {"type": "stop", "stop": {"recordingId": recording_id}}
                await signed_post(http, f"{recorder_url}/api/v1/room/{room}", stop, backend_url)
                await backend.wait(lambda: backend.first("stopped") is not None, 60)
            cpu = cpu_seconds(recorder.pid) - cpu_before
            await backend.wait(lambda: backend.file is not None, 120)
        stopped = next(p for _, kind, p in backend.events if kind == "stopped")
        assert backend.file is not None
        media_s, frames = video_seconds(backend.file)
        wall_s = stop_sent - started
        repeated = stopped.get("repeatedFrames")
        repeated_share = repeated / max(1, frames) if isinstance(repeated, int) else None
        offsets = [abs(o) for o in sync_offsets_ms(backend.file)]
    finally:
        if publishers is not None:
            stop_process(publishers)
        stop_process(recorder)
        temporal.stop()
        stopping.set()
        await server

    realtime = media_s / wall_s
    share = "?" if repeated_share is None else f"{repeated_share * 100:.2f} %"
    results = [
        BenchResult(
            "recorder_realtime",
            realtime,
            None,
            "media s / wall s",
            "higher",
            ">= 0.99 and <= 2 % repeated",
            note=f"4 publishers 640x360@15 into a {WIDTH}x{HEIGHT}@{FPS} grid for {wall_s:.1f} s wall: "
            f"{media_s:.2f} s of media, {frames} frames, {share} repeated because compositing fell behind; "
            f"recorder CPU {cpu / media_s:.2f} s per media second; peak RSS {rss.peak / 2**20:.0f} MiB",
            met=realtime >= 0.99 and repeated_share is not None and repeated_share <= 0.02,
        ),
        BenchResult(
            "recorder_peak_rss",
            rss.peak / 2**20,
            None,
            "MiB",
            "lower",
            "<= 400 MiB",
            note="the recorder process during recorder_realtime",
        ),
    ]
    if offsets:
        results.append(
            BenchResult(
                "av_sync_offset_ms",
                percentile(offsets, 95),
                None,
                "ms",
                "lower",
                "<= 40 ms",
                note=f"p95 of |flash - beep| over {len(offsets)} flashes of 4 publishers (median "
                f"{median(offsets):.1f} ms, max {max(offsets):.1f} ms); video side quantised to 1/{FPS} s",
            )
        )
    results.append(
        BenchResult(
            "whip_connect_ms",
            median(connect_ms),
            None,
            "ms",
            "lower",
            "-",
            note=f"p50 of {len(connect_ms)} publishers from the WHIP call (incl. the client's ICE gathering) to "
            f"the recorder's first media; all: {', '.join(f'{c:.0f}' for c in sorted(connect_ms))}",
        )
    )
    return results


# ------------------------------------------------------------------------- the publishers' process


async def publish_all(spec: list[dict[str, Any]]) -> None:
    from callrec.media.testsignals import PatternVideoTrack, SignalClock, ToneAudioTrack
    from callrec.media.whip_client import whip_publish

    async def one(item: dict[str, Any]) -> Any:
        clock = SignalClock()
        video = PatternVideoTrack(
            item["color"], width=640, height=360, fps=15, flash_every_s=FLASH_EVERY_S, clock=clock
        )
        audio = ToneAudioTrack(
            item["tone"], amplitude=0.15, flash_every_s=FLASH_EVERY_S, beep_hz=item["beep"], beep_s=0.1, clock=clock
        )
        return await whip_publish(item["url"], item["token"], [video, audio], timeout=30)

    posted: list[float] = []
    sessions = []
    for item in spec:
        posted.append(time.monotonic())
        sessions.append(await one(item))
    print(json.dumps(posted), flush=True)
    await asyncio.sleep(max(item["seconds"] for item in spec))
    for session in sessions:
        await session.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "publish":
        raise SystemExit("usage: python -m bench.recorder publish SPEC")
    asyncio.run(publish_all(json.loads(sys.argv[2])))
