"""The recorder pool (issue 16): what one recorder holds, how fast a crashed one is replaced, what segments cost.

- `recorder_capacity` / `recorder_capacity_audio`: concurrent recordings ONE recorder keeps in real time here, in
  this process, on the recorder's own media path (`RoomRecording(..., fragmented=True)` on `Stage`s, 4 feeds each,
  640x360 moving pictures at 30 fps and 20 ms audio frames, 720p30 grid or Ogg/Opus). N grows until a recording
  falls behind: more than 1 % repeated frames, an encoder lagging the clock by more than 0.2 s (p95), a file not as
  long as the wall time, or the publishers (this process too) not getting their frames in on time. With it
  `cpu_per_recording`: process CPU seconds per media second per recording at that N. The publishers' WebRTC
  receive and decode (aiortc, libvpx/opus) is NOT in it: a real recorder pays that on top.
- `crash_takeover_s`: API, worker, Temporal and two `callrec recorder`s as processes, `CALLREC_SEGMENT_S=1`;
  the recorder holding a recording is SIGKILLed once part 0000 has chunks: seconds until part 0001's first chunk
  object exists (p50 and max). It is mostly the workflow's heartbeat timeout (8 s, counted from the last 2 s beat).
- `segment_overhead_bytes` / `_cpu`: the same moving input recorded as one MP4, then fragmented and shipped to a
  LocalObjectStore every 1 s (as the pool does): ratio of bytes and of process CPU.

Run: `python -m bench.run [--quick] --only pool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np

from bench.common import BenchResult, Temporal, free_port, percentile, spawn, stop_process
from callrec.domain.layout import EncodingPreset, Layout, render_spec
from callrec.domain.pool import AUDIO_COST, RECORDINGS_PER_CORE, segments_prefix
from callrec.media.live import RoomRecording
from callrec.media.stage import SAMPLE_RATE, Feed, Stage
from callrec.recorder.shipping import SegmentShipper
from callrec.storage.objects import LocalObjectStore

SPEC = render_spec(EncodingPreset.H264_720P_30)
FEED_W, FEED_H, FEED_FPS, FEEDS = 640, 360, 30, 4
SHIFT_PX, CYCLE = 8, 80  # the picture moves 8 px a frame and wraps after 80 frames (640 px)
TONES_HZ = (300.0, 350.0, 400.0, 450.0)  # whole cycles in 20 ms: one audio frame repeats seamlessly
MAX_REPEATED, MAX_LAG_S, MAX_PUBLISH_LAG_S = 0.01, 0.2, 0.2
CORES = os.cpu_count() or 1
API_KEY = "bench-api-key-0123456789abcdef01234567"
SECRETS = {"token_secret": "bench-token-secret-0123456789abcdef0123",
           "recording_secret": "bench-recording-secret-0123456789abcdef",
           "publish_secret": "bench-publish-secret-0123456789abcdef01"}  # fmt: skip
SMALL = {"video": {"width": 320, "height": 180, "framerate": 15, "keyFrameInterval": 1, "bitrate": 300}}


# ----------------------------------------------------------------------------- input


def moving_frames() -> list[np.ndarray[Any, Any]]:
    """A textured picture (8x8 blocks plus fine grain) under colour gradients, shifted SHIFT_PX per frame: x264
    has motion and detail to encode, and the same frames always come out the same. yuv420p arrays: every push
    makes a frame of its own, as a decoder does (PyAV frames must not be reformatted by two threads at once)."""
    rng = np.random.default_rng(16)
    blocks = np.kron(rng.integers(40, 216, (FEED_H // 8, FEED_W // 8)), np.ones((8, 8)))
    y = np.clip(blocks + rng.normal(0, 6, (FEED_H, FEED_W)), 16, 235).astype(np.uint8)
    u = np.tile(np.linspace(64, 192, FEED_W // 2), (FEED_H // 2, 1)).astype(np.uint8)
    v = np.tile(np.linspace(192, 64, FEED_H // 2)[:, None], (1, FEED_W // 2)).astype(np.uint8)
    frames = []
    for k in range(CYCLE):
        planes = [np.roll(p, k * s, axis=1) for p, s in ((y, SHIFT_PX), (u, SHIFT_PX // 2), (v, SHIFT_PX // 2))]
        data = np.concatenate([planes[0], planes[1].reshape(-1, FEED_W), planes[2].reshape(-1, FEED_W)])
        frames.append(data)
    return frames


def tone(hz: float) -> av.AudioFrame:
    samples = (0.1 * np.sin(2 * np.pi * hz * np.arange(960) / SAMPLE_RATE)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    return frame


class Publishers:
    """One thread pushing into every feed of `stages` as WHIP publishers would (decoded frames, capture-stamped):
    video at 30 fps (each feed a phase of the moving picture) unless audio only, 20 ms audio frames.
    `lags`: how far behind its schedule it was at each push."""

    def __init__(self, stages: list[Stage], frames: list[np.ndarray[Any, Any]], video: bool) -> None:
        self.feeds: list[tuple[Feed, int, av.AudioFrame]] = []
        for s, stage in enumerate(stages):
            for i in range(FEEDS):
                feed = Feed(f"p{s}-{i}", f"Person {i}", "user")
                stage.add(feed)
                self.feeds.append((feed, 20 * i, tone(TONES_HZ[i])))
        self.frames, self.video = frames, video
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publishers", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        audio_n = video_n = 0
        while not self._stop.is_set():
            audio_at, video_at = start + audio_n * 0.02, start + video_n / FEED_FPS
            if not self.video or audio_at <= video_at:
                for feed, _, frame in self.feeds:
                    feed.push_audio(frame, audio_at)
                audio_n, due = audio_n + 1, audio_at
            else:
                for feed, phase, _ in self.feeds:
                    picture = av.VideoFrame.from_ndarray(self.frames[(video_n + phase) % CYCLE], format="yuv420p")
                    feed.push_video(picture, video_at)
                video_n, due = video_n + 1, video_at
            self.lags.append(time.monotonic() - due)
            nxt = min(start + audio_n * 0.02, start + video_n / FEED_FPS if self.video else float("inf"))
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def __enter__(self) -> Publishers:
        self._thread.start()
        time.sleep(0.1)  # the first pictures are there when the recordings start
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for entry in self.feeds:
            entry[0].close()


# ----------------------------------------------------------------------------- capacity


async def record_many(
    n: int, seconds: float, audio_only: bool, frames: list[np.ndarray[Any, Any]], directory: Path
) -> dict[str, Any]:
    """N recordings of N 4-person rooms for `seconds`, concurrently; what kept up and what it cost."""
    directory.mkdir(parents=True, exist_ok=True)
    stages = [Stage(f"room-{i}") for i in range(n)]
    people = [(f"p{s}-{i}", f"Person {i}") for s in range(n) for i in range(FEEDS)]
    recordings = [
        RoomRecording(directory / f"{i}.{'ogg' if audio_only else 'mp4'}", Layout.GRID, SPEC, stage,
                      people[i * FEEDS : (i + 1) * FEEDS], audio_only=audio_only, fragmented=True)
        for i, stage in enumerate(stages)
    ]  # fmt: skip
    lags: list[float] = []
    with Publishers(stages, frames, video=not audio_only) as publishers:
        cpu0 = time.process_time()
        for recording in recordings:
            recording.start()
        publishers.lags.clear()  # opening N encoders holds them up once: not what is measured
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for r in recordings:  # how far its encoder is behind the clock (private, but that is the figure)
                lags.append(max(0.0, now - r.origin - r.playout_delay_s - r._media_time()))
        stopped = time.monotonic()
        with ThreadPoolExecutor(n) as pool:  # stopped together, as the recorder's sessions would be
            durations = await asyncio.gather(*(asyncio.wrap_future(pool.submit(r.stop)) for r in recordings))
        cpu = time.process_time() - cpu0
        publish_lag = percentile(publishers.lags, 95) if publishers.lags else 0.0
    walls = [stopped - r.origin for r in recordings]
    frames_total = sum(r.frames for r in recordings)
    repeated = sum(r.repeated for r in recordings) / frames_total if frames_total else 0.0
    lag = percentile(lags, 95) if lags else 0.0
    short = max(abs(d - w) / w for d, w in zip(durations, walls, strict=True))
    for path in directory.iterdir():
        path.unlink()
    return {
        "n": n, "repeated": repeated, "lag": lag, "publish_lag": publish_lag, "short": short,
        "cpu_per": cpu / sum(durations), "cpu": cpu, "media_s": sum(durations),
        "ok": repeated < MAX_REPEATED and lag <= MAX_LAG_S and short < 0.02 and publish_lag <= MAX_PUBLISH_LAG_S,
    }  # fmt: skip


def describe(step: dict[str, Any]) -> str:
    return (f"N={step['n']}: {step['repeated'] * 100:.2f} % repeated, encoder lag p95 {step['lag']:.2f} s, "
            f"publishers late p95 {step['publish_lag']:.2f} s, {step['cpu_per']:.2f} CPU s/media s each")  # fmt: skip


async def capacity(
    audio_only: bool, steps: list[int], seconds: float, frames: list[np.ndarray[Any, Any]], directory: Path
) -> list[BenchResult]:
    done: list[dict[str, Any]] = []
    for n in steps:
        step = await record_many(n, seconds, audio_only, frames, directory)
        print(f"    {'audio' if audio_only else 'video'} {describe(step)} -> {'ok' if step['ok'] else 'behind'}",
              flush=True)  # fmt: skip
        done.append(step)
        if not step["ok"]:
            break
    good = [s for s in done if s["ok"]]
    best = good[-1] if good else None
    held = best["n"] if best else 0
    first_bad = next((s for s in done if not s["ok"]), None)
    kind = "audio-only (Ogg/Opus)" if audio_only else f"{SPEC.width}x{SPEC.height}@{SPEC.framerate} grid"
    budget = CORES * RECORDINGS_PER_CORE / (AUDIO_COST if audio_only else 1.0)
    suffix = "_audio" if audio_only else ""
    feeds = "20 ms audio frames" if audio_only else "640x360@30 moving picture, 20 ms audio"
    note = (f"{kind} recordings of 4 feeds ({feeds}) on {CORES} cores, {seconds:.0f} s "
            f"a step; held: {describe(best) if best else 'none'}; "
            f"{'first behind: ' + describe(first_bad) if first_bad else 'the cap was reached'}. "
            "The publishers' WebRTC receive and decode is NOT included")  # fmt: skip
    return [
        BenchResult(f"recorder_capacity{suffix}", held, None, "recordings", "higher",
                    f">= {budget:g} recordings", note=note + f"; the target is the default budget ({budget:g})"),
        BenchResult(f"cpu_per_recording{suffix}", best["cpu_per"] if best else float("nan"), None,
                    "CPU s / media s", "lower", "-",
                    note=f"process CPU per media second per recording at N={held} (recordings + pushing frames; "
                    "no WebRTC decode)"),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- segment overhead


async def segment_overhead(seconds: float, frames: list[np.ndarray[Any, Any]], directory: Path) -> list[BenchResult]:
    directory.mkdir(parents=True, exist_ok=True)
    store = LocalObjectStore(directory / "objects")
    measured: dict[bool, tuple[int, float]] = {}
    for fragmented in (False, True):
        stage = Stage("overhead")
        path = directory / f"{'segmented' if fragmented else 'single'}.mp4"
        recording = RoomRecording(path, Layout.GRID, SPEC, stage, [("p0-0", "A"), ("p0-1", "B")], fragmented=fragmented)
        publishers = Publishers([stage], frames, video=True)
        publishers.feeds = publishers.feeds[:2]  # two people
        with publishers:
            cpu0 = time.process_time()
            recording.start()
            closed = asyncio.Event()
            prefix = f"{segments_prefix('overhead')}0000/chunk-"
            shipper = SegmentShipper(store, prefix, path, every_s=1.0, first_after_s=1.0)
            shipping = asyncio.ensure_future(shipper.run(closed)) if fragmented else None
            await asyncio.sleep(seconds)
            await asyncio.to_thread(recording.stop)
            closed.set()
            size = (await shipping).bytes if shipping is not None else path.stat().st_size
            cpu = time.process_time() - cpu0
        keys = await store.list_keys(segments_prefix("overhead")) if fragmented else []
        measured[fragmented] = (size, cpu)
        print(f"    {'segmented' if fragmented else 'one file'}: {size / 1e6:.2f} MB, CPU {cpu:.1f} s"
              + (f", {len(keys)} chunks" if fragmented else ""), flush=True)  # fmt: skip
    (one_b, one_cpu), (seg_b, seg_cpu) = measured[False], measured[True]
    what = f"{SPEC.width}x{SPEC.height}@{SPEC.framerate}, 2 moving feeds, {seconds:.0f} s"
    return [
        BenchResult("segment_overhead_bytes", seg_b / 1e6, one_b / 1e6, "MB", "lower", "<= 1.03x",
                    note=f"{what}: fragmented MP4 (keyframes every <= 2 s) shipped every 1 s vs one MP4 (every 4 s); "
                    f"ours/direct {seg_b / one_b:.3f}x"),
        BenchResult("segment_overhead_cpu", seg_cpu, one_cpu, "CPU s", "lower", "<= 1.1x",
                    note=f"{what}: process CPU incl. shipping; ours/direct {seg_cpu / one_cpu:.3f}x"),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- crash takeover


class Cluster:
    """Temporal, `callrec api`, `callrec worker` and recorders as processes on one data dir (local object store)."""

    def __init__(self, workdir: Path, temporal: Temporal) -> None:
        self.workdir, self.logs = workdir, workdir / "logs"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.values: dict[str, object] = {
            "data_dir": workdir / "data", "api_key": API_KEY, **SECRETS, "temporal_address": temporal.address,
            "task_queue": f"bench-pool-{uuid.uuid4().hex[:8]}", "api_port": port, "api_url": self.base,
            "start_timeout_s": 60, "upload_timeout_s": 120, "recorder_port": free_port(),
        }  # fmt: skip
        self.store = LocalObjectStore(workdir / "data" / "objects")  # settings.objects_dir
        self.processes: dict[str, Any] = {}
        self.api = httpx.AsyncClient(base_url=self.base, headers={"X-API-KEY": API_KEY}, timeout=60)

    def env(self, **extra: object) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
        return env | {f"CALLREC_{k.upper()}": str(v) for k, v in (self.values | extra).items()}

    async def start(self) -> None:
        from callrec.domain.settings import Settings
        from callrec.storage.catalog import migrate

        settings = Settings(**self.values)  # type: ignore[arg-type]
        await migrate(settings)
        for part in ("worker", "api"):
            argv = [sys.executable, "-m", "callrec.cli", part]
            self.processes[part] = spawn(argv, self.logs / f"{part}.log", self.env())
        await self.recorders(lambda listed: True, 60)

    async def recorders(self, check: Any, timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                answer = await self.api.get("/api/v1/recorders")
                if answer.status_code == 200:
                    listed = {r["id"]: r for r in answer.json()["recorders"]}
                    if check(listed):
                        return listed
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pool did not get there in {timeout:g} s")
            await asyncio.sleep(0.2)

    async def recorder(self, name: str) -> None:
        env = self.env(recorder_port=free_port(), recorder_id=name, recorder_capacity=1.0, segment_s=1.0)
        argv = [sys.executable, "-m", "callrec.cli", "recorder"]
        self.processes[name] = spawn(argv, self.logs / f"{name}.log", env)
        since = time.time() * 1000
        await self.recorders(lambda ls: ls.get(name, {}).get("state") == "active" and ls[name]["lastSeen"] > since, 60)

    async def chunks(self, recording_id: str, part: int) -> list[str]:
        """Chunk objects of the part: `parts/<part:04d>/chunk-*` (or `parts/<part:04d>-<run>/chunk-*`)."""
        prefix = segments_prefix(recording_id)
        keys = await self.store.list_keys(prefix)
        return [k for k in keys if k[len(prefix) :].split("/")[0].split("-")[0] == f"{part:04d}" and "/chunk-" in k]

    async def until(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout:g} s (logs: {self.logs})")
            await asyncio.sleep(0.05)

    async def takeover(self, run: int) -> float:
        room = await self.api.post("/api/v1/rooms", json={"roomName": f"Crash {run}", "config": {}})
        room_id = room.json()["roomId"]
        call = {"participants": [{"id": "alice", "name": "Alice", "role": "moderator"}]}
        (await self.api.put(f"/api/v1/rooms/{room_id}/call", json=call)).raise_for_status()
        started = await self.api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"encoding": SMALL}})
        if started.status_code != 201:
            raise RuntimeError(f"POST /recordings: {started.status_code} {started.text[:300]}")
        recording_id = started.json()["recordingId"]

        async def part0() -> bool:
            return len(await self.chunks(recording_id, 0)) >= 2

        await self.until("part 0000 chunks", part0, 60)
        listed = await self.recorders(lambda ls: any(r["recordings"] for r in ls.values()), 10)
        [holder] = [name for name, r in listed.items() if r["recordings"]]
        self.processes[holder].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.processes[holder].wait()

        async def part1() -> bool:
            return bool(await self.chunks(recording_id, 1))

        await self.until("part 0001 chunks", part1, 60)
        took = time.monotonic() - killed
        (await self.api.post(f"/api/v1/recordings/{recording_id}/stop")).raise_for_status()

        async def ended() -> bool:
            status = (await self.api.get(f"/api/v1/recordings/{recording_id}")).json().get("status")
            return status in ("complete", "failed")

        await self.until("the recording's end", ended, 120)
        await self.recorder(holder)  # back under its name: two recorders again
        return took

    async def close(self) -> None:
        await self.api.aclose()
        for process in reversed(self.processes.values()):  # recorders first, the API last
            stop_process(process)


async def crash_takeover(runs: int, workdir: Path) -> list[BenchResult]:
    temporal = Temporal(workdir / "temporal")
    cluster: Cluster | None = None
    try:
        await temporal.ready()
        cluster = Cluster(workdir, temporal)
        await cluster.start()
        await cluster.recorder("rec-a")
        await cluster.recorder("rec-b")
        times = []
        for run in range(runs):
            times.append(await cluster.takeover(run))
            print(f"    takeover {run + 1}/{runs}: {times[-1]:.2f} s", flush=True)
    finally:
        if cluster is not None:
            await cluster.close()
        temporal.stop()
    all_s = ", ".join(f"{t:.1f}" for t in times)
    note = (f"{runs} SIGKILLs of the recorder holding a recording (320x180@15, CALLREC_SEGMENT_S=1): kill -> first "
            f"chunk of part 0001; all: {all_s} s; noticed by the 8 s heartbeat timeout")  # fmt: skip
    return [
        BenchResult("crash_takeover_s", percentile(times, 50), None, "s", "lower", "<= 12 s", note=note),
        BenchResult("crash_takeover_max_s", max(times), None, "s", "lower", "<= 15 s", note=f"max of {runs} runs"),
    ]


# ----------------------------------------------------------------------------- the group


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    workdir.mkdir(parents=True, exist_ok=True)
    frames = moving_frames()
    seconds = 8.0 if quick else 20.0
    results: list[BenchResult] = []
    results += await capacity(False, list(range(1, 5 if quick else 9)), seconds, frames, workdir / "capacity")
    audio_steps = [5, 10, 15, 20, 30, 40] if quick else [5, 10, 15, 20, 30, 40, 60, 80]
    results += await capacity(True, audio_steps, seconds, frames, workdir / "capacity")
    results += await segment_overhead(seconds, frames, workdir / "overhead")
    results += await crash_takeover(2 if quick else 5, workdir / "crash")
    held = results[0].ours
    print(f"    RECORDINGS_PER_CORE from this run: {held / CORES:g} ({held:g} recordings / {CORES} cores)", flush=True)
    return results
