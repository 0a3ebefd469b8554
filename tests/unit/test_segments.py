"""Crash-proof recordings: fragmented files shipped in chunks while they grow, and parts joined back into one file."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.live import RoomRecording
from callrec.media.segments import Joined, PartInfo, join_parts
from callrec.media.stage import Feed, Stage
from callrec.recorder.shipping import SegmentShipper
from callrec.storage.objects import LocalObjectStore, ObjectStoreError, PutResult
from tests.media_checks import band_level, decode_audio
from tests.unit.test_stage import publish_feed

# Keyframes (and so fragments) every 0.5 s: a short recording holds several fragments.
SPEC = RenderSpec(width=320, height=240, framerate=15, video_bitrate_kbps=300, keyframe_interval_s=0.5)
RED, BLUE = (220, 30, 30), (30, 30, 220)
LOW_HZ, HIGH_HZ = 440.0, 1250.0
GAP_S = 3.0


@dataclass
class Recorded:
    path: Path
    duration_s: float
    recording: RoomRecording


class _Room:
    """A stage with one participant showing `colour` and humming `hz`, recorded as a fragmented file."""

    def __init__(
        self, path: Path, colour: tuple[int, int, int], hz: float, audio_only: bool, spec: RenderSpec = SPEC
    ) -> None:
        stage, self.stop = Stage("room"), threading.Event()
        feed = Feed("alice", "Alice", "user")
        stage.add(feed)
        self.publisher = threading.Thread(target=publish_feed, args=(feed, colour, hz, self.stop, (320, 240)))
        self.recording = RoomRecording(
            path, Layout.GRID, spec, stage, [("alice", "Alice")], audio_only, playout_delay_s=0.1, fragmented=True
        )

    def start(self) -> None:
        self.publisher.start()
        time.sleep(0.05)  # the first picture is there when the recording starts
        self.recording.start()

    def finish(self) -> Recorded:
        try:
            duration = self.recording.stop()
        finally:
            self.stop.set()
            self.publisher.join()
        return Recorded(self.recording.path, duration, self.recording)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Recorded]]:
    """Two video and two audio-only parts (red/low tone, then blue/high tone), recorded at the same time."""
    root = tmp_path_factory.mktemp("parts")
    rooms = {
        kind: [
            _Room(root / f"{kind}{i}.{'ogg' if kind == 'audio' else 'mp4'}", colour, hz, kind == "audio")
            for i, (colour, hz) in enumerate([(RED, LOW_HZ), (BLUE, HIGH_HZ)])
        ]
        for kind in ("video", "audio")
    }
    for room in rooms["video"] + rooms["audio"]:
        room.start()
    time.sleep(1.3)
    return {kind: [room.finish() for room in group] for kind, group in rooms.items()}


def _two_parts(recorded: list[Recorded]) -> list[tuple[PartInfo, Path]]:
    first_ms = 1_700_000_000_000
    second_ms = first_ms + round((recorded[0].duration_s + GAP_S) * 1000)
    return [(PartInfo(first_ms, "rec-a"), recorded[0].path), (PartInfo(second_ms, "rec-b"), recorded[1].path)]


def _pts(path: Path, kind: str) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        return [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None and p.time_base]


def _red_or_blue(path: Path) -> list[tuple[float, str]]:
    """(time, 'red' / 'blue' / '?') of every decoded frame, by the colour at the picture's centre."""
    seen = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            r, _, b = (int(c) for c in frame.to_ndarray(format="rgb24")[120, 160])
            seen.append((float(frame.time or 0.0), "red" if r > 150 > b else "blue" if b > 150 > r else "?"))
    return seen


def _assert_two_parts_joined(joined: Joined, recorded: list[Recorded], out: Path) -> None:
    first, second = recorded[0].duration_s, recorded[1].duration_s
    assert joined.parts == 2
    assert joined.duration_s == pytest.approx(first + second, abs=0.1)
    assert len(joined.gaps) == 1
    assert joined.gaps[0].offset_s == pytest.approx(first, abs=0.05)
    assert joined.gaps[0].duration_s == pytest.approx(GAP_S, abs=0.05)
    rate, samples, _ = decode_audio(out)
    assert len(samples) / rate == pytest.approx(joined.duration_s, abs=0.05)
    boundary = round(joined.gaps[0].offset_s * rate)
    before, after = samples[boundary - rate // 2 : boundary - 2000], samples[boundary + 2000 : boundary + rate // 2]
    assert band_level(before, rate, LOW_HZ) > 0.1 > band_level(before, rate, HIGH_HZ)
    assert band_level(after, rate, HIGH_HZ) > 0.1 > band_level(after, rate, LOW_HZ)


def test_two_video_parts_join_into_one_mp4_with_the_gap_between_them(
    parts: dict[str, list[Recorded]], tmp_path: Path
) -> None:
    out = tmp_path / "joined.mp4"
    joined = join_parts(_two_parts(parts["video"]), out, audio_only=False)
    _assert_two_parts_joined(joined, parts["video"], out)
    with av.open(str(out)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
    with out.open("rb") as f:  # +faststart: the index comes before the media
        head = f.read(4096)
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head
    for kind in ("video", "audio"):
        pts = _pts(out, kind)
        assert pts and all(b > a for a, b in zip(pts, pts[1:], strict=False)), kind
        assert pts[-1] == pytest.approx(joined.duration_s, abs=0.1)
    frames = _red_or_blue(out)
    boundary = joined.gaps[0].offset_s
    assert {c for t, c in frames if 0.2 < t < boundary - 0.1} == {"red"}
    assert {c for t, c in frames if t > boundary + 0.2} == {"blue"}
    assert len(frames) == parts["video"][0].recording.frames + parts["video"][1].recording.frames


def test_two_audio_only_parts_join_into_one_ogg_opus_with_the_gap_between_them(
    parts: dict[str, list[Recorded]], tmp_path: Path
) -> None:
    out = tmp_path / "joined.ogg"
    joined = join_parts(_two_parts(parts["audio"]), out, audio_only=True)
    _assert_two_parts_joined(joined, parts["audio"], out)
    with av.open(str(out)) as container:
        assert container.format.name == "ogg"
        assert [s.codec_context.name for s in container.streams] == ["opus"]
    pts = _pts(out, "audio")
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))


def _decode_all(path: Path) -> list[np.ndarray]:
    """Every video frame (as grey), decoding audio as well: raises on any damaged packet."""
    pictures = []
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                pictures.append(frame.to_ndarray(format="gray"))
    return pictures


def _held(path: Path, size: int) -> float:
    """The end of the media whose packets lie wholly in the first `size` bytes of the (whole) file at `path`."""
    end = 0.0
    with av.open(str(path)) as container:
        for p in container.demux():
            if p.pts is not None and p.time_base and p.pos is not None and p.pos + p.size <= size:
                end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
    return end


def test_a_recording_cut_at_60_percent_joins_into_the_media_it_held(
    parts: dict[str, list[Recorded]], tmp_path: Path
) -> None:
    full = parts["video"][0]
    data = full.path.read_bytes()
    prefix = tmp_path / "prefix.mp4"
    prefix.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "joined.mp4"
    joined = join_parts([(PartInfo(0, "rec-a"), prefix)], out, audio_only=False)
    assert joined.parts == 1 and joined.gaps == []
    assert joined.duration_s == pytest.approx(_held(full.path, len(data) * 6 // 10), abs=0.002)
    assert joined.duration_s < full.duration_s - 0.2
    pictures, originals = _decode_all(out), _decode_all(full.path)
    assert len(pictures) == pytest.approx(joined.duration_s * SPEC.framerate, abs=2)
    assert all(np.array_equal(a, b) for a, b in zip(pictures, originals, strict=False))  # copied, not re-encoded
    _, samples, _ = decode_audio(out)
    assert len(samples) > 0


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_a_recording_cut_at_any_byte_joins_into_a_playable_file_or_is_refused(
    parts: dict[str, list[Recorded]], tmp_path: Path, kind: str
) -> None:
    full = parts[kind][0]
    data = full.path.read_bytes()
    prefix, out = tmp_path / "prefix", tmp_path / ("joined.ogg" if kind == "audio" else "joined.mp4")
    durations = []
    for cut in np.linspace(0, len(data), 41).astype(int):
        prefix.write_bytes(data[:cut])
        try:
            joined = join_parts([(PartInfo(0, "rec-a"), prefix)], out, audio_only=kind == "audio")
        except ValueError:
            assert not out.exists()
            durations.append(0.0)
            continue
        _decode_all(out)
        durations.append(joined.duration_s)
    assert durations == sorted(durations)  # a longer prefix never holds less
    assert durations[0] == 0.0 and durations[-1] == pytest.approx(full.duration_s, abs=0.05)
    # media shows up as each MP4 fragment (0.5 s here) or Ogg page (about 1 s) completes
    assert sum(d > 0 for d in durations) >= (30 if kind == "video" else 12)


def test_no_usable_part_is_an_error(parts: dict[str, list[Recorded]], tmp_path: Path) -> None:
    empty, garbage, header = tmp_path / "empty", tmp_path / "garbage", tmp_path / "header"
    empty.write_bytes(b"")
    garbage.write_bytes(bytes(range(256)) * 40)
    header.write_bytes(parts["video"][0].path.read_bytes()[:200])
    out = tmp_path / "joined.mp4"
    with pytest.raises(ValueError):
        join_parts([(PartInfo(i, "rec"), p) for i, p in enumerate([empty, garbage, header])], out, audio_only=False)
    assert not out.exists()
    with pytest.raises(ValueError):
        join_parts([], out, audio_only=False)


def test_an_unusable_part_between_two_is_skipped_and_its_time_counts_as_missing(
    parts: dict[str, list[Recorded]], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(parts["video"][0].path.read_bytes()[:200])
    first, second = _two_parts(parts["video"])
    middle = PartInfo(first[0].origin_ms + 2000, "rec-dead")
    joined = join_parts([first, (middle, broken), second], tmp_path / "joined.mp4", audio_only=False)
    assert joined.parts == 2 and len(joined.gaps) == 1
    assert joined.gaps[0].duration_s == pytest.approx(GAP_S, abs=0.05)


def test_parts_that_differ_are_not_joined(parts: dict[str, list[Recorded]], tmp_path: Path) -> None:
    other = tmp_path / "other.mp4"
    small = RenderSpec(width=160, height=120, framerate=15, video_bitrate_kbps=200)
    room = _Room(other, RED, LOW_HZ, audio_only=False, spec=small)
    room.start()
    time.sleep(0.5)
    room.finish()
    out = tmp_path / "joined.mp4"
    with pytest.raises(ValueError, match="does not match"):
        join_parts([(PartInfo(0, "a"), parts["video"][0].path), (PartInfo(5000, "b"), other)], out, audio_only=False)
    assert not out.exists()


# --- shipping -------------------------------------------------------------------------


async def _chunks(store: LocalObjectStore, prefix: str) -> list[bytes]:
    keys = await store.list_keys(prefix)
    assert keys == [f"{prefix}{i:06d}" for i in range(len(keys))]  # numbered without holes
    return [b"".join([piece async for piece in store.read(key)]) for key in keys]


async def test_a_recording_is_shipped_while_it_grows_and_the_chunks_make_up_the_file(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store", fsync=False)
    room = _Room(tmp_path / "room.mp4", RED, LOW_HZ, audio_only=False)
    shipper = SegmentShipper(store, "segments/rec-1/part-0/", room.recording.path, every_s=0.3, first_after_s=0.1)
    stopped = asyncio.Event()
    await asyncio.to_thread(room.start)
    shipping = asyncio.create_task(shipper.run(stopped))
    await asyncio.sleep(1.6)
    while_recording = shipper.shipped
    recorded = await asyncio.to_thread(room.finish)
    stopped.set()
    shipped = await shipping

    data = recorded.path.read_bytes()
    chunks = await _chunks(store, "segments/rec-1/part-0/")
    assert b"".join(chunks) == data
    assert shipped.segments == len(chunks) and shipped.bytes == len(data)
    assert while_recording.segments > 1 and 0 < while_recording.bytes < len(data)
    # what was up there while recording (a recorder dying then) is usable media
    prefix = tmp_path / "prefix.mp4"
    prefix.write_bytes(b"".join(chunks[: while_recording.segments]))
    joined = join_parts([(PartInfo(0, "rec-1"), prefix)], tmp_path / "joined.mp4", audio_only=False)
    assert 0.5 < joined.duration_s < recorded.duration_s
    _decode_all(tmp_path / "joined.mp4")


class _FlakyStore(LocalObjectStore):
    """A real local store whose first `failures` writes fail partway, as an unreachable S3 would."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root, fsync=False)
        self.failures = failures
        self.attempts = 0

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> PutResult:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1

            async def cut_short() -> AsyncIterator[bytes]:
                async for piece in chunks:
                    yield piece
                    raise ObjectStoreError("connection reset")

            return await super().put_stream(key, cut_short())
        return await super().put_stream(key, chunks)


def _grow(path: Path, pieces: Iterator[bytes], every_s: float, done: threading.Event) -> None:
    with path.open("ab") as f:
        for piece in pieces:
            f.write(piece)
            f.flush()
            time.sleep(every_s)
    done.set()


async def test_failed_uploads_are_retried_from_the_same_offset_and_big_backlogs_split(tmp_path: Path) -> None:
    store = _FlakyStore(tmp_path / "store", failures=3)
    path = tmp_path / "growing.bin"
    rng = np.random.default_rng(7)
    pieces = [rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() for _ in range(10)]
    shipper = SegmentShipper(store, "seg/", path, every_s=0.05, first_after_s=0.0, max_chunk_bytes=4096)
    stopped, written = asyncio.Event(), threading.Event()
    writer = threading.Thread(target=_grow, args=(path, iter(pieces), 0.04, written))
    writer.start()
    shipping = asyncio.create_task(shipper.run(stopped))
    await asyncio.to_thread(written.wait)
    writer.join()
    stopped.set()
    shipped = await shipping
    chunks = await _chunks(store, "seg/")
    assert b"".join(chunks) == b"".join(pieces) and shipped.bytes == 30_000
    assert all(len(chunk) <= 4096 for chunk in chunks)
    assert store.attempts == len(chunks) + 3


async def test_ship_sends_only_what_is_new(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store", fsync=False)
    path = tmp_path / "growing.bin"
    shipper = SegmentShipper(store, "seg/", path, max_chunk_bytes=4096)
    assert await shipper.ship() == 0  # not created yet
    path.write_bytes(b"a" * 5000)
    assert [await shipper.ship() for _ in range(3)] == [4096, 904, 0]
    with path.open("ab") as f:
        f.write(b"b" * 10)
    assert await shipper.ship() == 10
    assert shipper.shipped.segments == 3 and shipper.shipped.bytes == 5010
    assert b"".join(await _chunks(store, "seg/")) == path.read_bytes()


async def test_the_last_ship_gives_up_after_a_few_tries_and_says_so(tmp_path: Path) -> None:
    store = _FlakyStore(tmp_path / "store", failures=100)
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 1000)
    shipper = SegmentShipper(store, "seg/", path, first_after_s=60, final_tries=3, backoff_s=0.01)
    stopped = asyncio.Event()
    stopped.set()
    with pytest.raises(ObjectStoreError):
        await shipper.run(stopped)
    assert store.attempts == 3
    assert await store.list_keys("seg/") == [] and shipper.shipped.bytes == 0
