"""Live media of a room, as the recorder receives it: one `Feed` per publisher, grouped in a `Stage` per room.

Publishers push decoded frames stamped with their capture instant on the recorder's local clock
(`time.monotonic()` seconds); recordings read them back by capture time. Every push is cheap, never raises
and keeps memory bounded: video keeps about a second of frames (yuv420p, at most 1280x720), audio a ring of
a few seconds at 48 kHz mono float32.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from callrec.metrics import DROPPED_FRAMES

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
MAX_WIDTH, MAX_HEIGHT = 1280, 720  # larger frames are downscaled to fit on push
VIDEO_KEEP_S = 1.0  # video frames older than this (behind the newest) are dropped
VIDEO_KEEP_FRAMES = 32  # and never more than this many frames per feed (0.5 s of playout delay at 60 fps)
_PICTURES = itertools.count(1)  # every stored picture's `seq`
AUDIO_RING_S = 4.0  # audio older than this (behind the newest sample) reads as silence
AUDIO_RESYNC_S = 0.010  # audio this far from where its capture time puts it is moved there (a gap or a clock jump)

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Picture:
    """A stored video frame: `seq` grows with each frame pushed to any feed, so a newer feed of the same participant
    (a reconnect) never looks older than what its predecessor showed."""

    capture_s: float
    seq: int
    frame: av.VideoFrame


def fit_within(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest even size with the aspect ratio of width x height that fits in max_width x max_height."""
    scale = min(max_width / width, max_height / height)
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return min(w, max_width // 2 * 2), min(h, max_height // 2 * 2)


def _stored(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame as a feed keeps it: yuv420p, even dimensions, at most MAX_WIDTH x MAX_HEIGHT (turned for portrait)."""
    width, height = frame.width, frame.height
    if width < 2 or height < 2:
        raise ValueError(f"frame too small: {width}x{height}")
    box = (MAX_WIDTH, MAX_HEIGHT) if width >= height else (MAX_HEIGHT, MAX_WIDTH)  # portrait cameras: 720x1280
    if width > box[0] or height > box[1]:
        width, height = fit_within(width, height, *box)
    else:
        width, height = width // 2 * 2, height // 2 * 2
    if frame.format.name == "yuv420p" and (width, height) == (frame.width, frame.height):
        return frame
    return frame.reformat(width=width, height=height, format="yuv420p", interpolation="BILINEAR")


class _AudioRing:
    """Samples by absolute position on the local clock (position = seconds * SAMPLE_RATE)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: Samples = np.zeros(size, dtype=np.float32)
        self.begin = 0  # [max(begin, end - size), end) holds written samples (or silence between them)
        self.end = 0

    def write(self, pos: int, samples: Samples) -> None:
        n = len(samples)
        if n == 0:
            return
        if n > self.size:
            samples, pos, n = samples[-self.size :], pos + n - self.size, self.size
        if self.begin == self.end or pos + n <= self.end - self.size or pos >= self.end + self.size:
            self.data[:] = 0  # first write, or far away from what is stored: start over
            self.begin, self.end = pos, pos
        elif pos > self.end:
            self._zero(self.end, pos)  # silence in the gap
        elif pos < self.begin:
            self.begin = pos
        self._put(pos, samples)
        self.end = max(self.end, pos + n)
        self.begin = max(self.begin, self.end - self.size)

    def _slices(self, start: int, stop: int) -> list[tuple[slice, slice]]:
        """(ring slice, relative slice) pairs covering absolute positions [start, stop), stop - start <= size."""
        first = start % self.size
        count = stop - start
        if first + count <= self.size:
            return [(slice(first, first + count), slice(0, count))]
        head = self.size - first
        return [(slice(first, self.size), slice(0, head)), (slice(0, count - head), slice(head, count))]

    def _zero(self, start: int, stop: int) -> None:
        start = max(start, stop - self.size)
        for ring, _ in self._slices(start, stop):
            self.data[ring] = 0

    def _put(self, pos: int, samples: Samples) -> None:
        for ring, rel in self._slices(pos, pos + len(samples)):
            self.data[ring] = samples[rel]

    def read(self, start: int, count: int) -> Samples:
        out: Samples = np.zeros(count, dtype=np.float32)
        lo, hi = max(start, self.begin, self.end - self.size), min(start + count, self.end)
        if lo < hi:
            for ring, rel in self._slices(lo, hi):
                out[rel.start + lo - start : rel.stop + lo - start] = self.data[ring]
        return out


class Feed:
    """One publisher's media. Thread-safe: pushed from the event loop, read by recordings' encoder threads."""

    def __init__(self, participant_id: str, name: str, role: str) -> None:
        self.participant_id = participant_id
        self.name = name
        self.role = role
        self._lock = threading.Lock()
        self._video: deque[Picture] = deque()
        self._ring = _AudioRing(round(AUDIO_RING_S * SAMPLE_RATE))
        self._cursor: int | None = None  # where the next resampled audio sample goes
        self._resampler: av.AudioResampler | None = None
        self._resampler_input: tuple[str, str, int] | None = None
        self._last_media_s: float | None = None
        self._has_audio = False
        self._closed = False
        self._bad_frames = 0
        self._stage: weakref.ref[Stage] | None = None

    def __repr__(self) -> str:
        return f"Feed({self.participant_id!r}, {self.name!r})"

    @property
    def last_media_s(self) -> float | None:
        return self._last_media_s

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def has_audio(self) -> bool:
        return self._has_audio

    @property
    def bad_frames(self) -> int:
        """Frames dropped because they could not be used."""
        return self._bad_frames

    def _drop(self, kind: str, exc: BaseException) -> None:
        self._bad_frames += 1
        DROPPED_FRAMES.labels("bad_input").inc()
        if self._bad_frames == 1:
            log.warning("dropped a bad %s frame of %r (later ones are dropped silently): %r", kind, self, exc)

    def push_video(self, frame: av.VideoFrame, capture_s: float) -> None:
        if self._closed:
            return
        try:
            if not math.isfinite(capture_s):
                raise ValueError(f"capture time {capture_s!r}")
            stored = _stored(frame)
        except Exception as exc:  # noqa: BLE001 - a bad frame is dropped, never raised to the publisher's loop
            self._drop("video", exc)
            return
        with self._lock:
            self._last_media_s = time.monotonic()
            video = self._video
            while video and video[-1].capture_s >= capture_s:
                video.pop()  # the capture clock went back (e.g. sender-report mapping kicked in): newest wins
            video.append(Picture(capture_s, next(_PICTURES), stored))
            while len(video) > VIDEO_KEEP_FRAMES or (len(video) > 1 and video[1].capture_s <= capture_s - VIDEO_KEEP_S):
                video.popleft()

    def push_audio(self, frame: av.AudioFrame, capture_s: float) -> None:
        if self._closed:
            return
        try:
            if not math.isfinite(capture_s):
                raise ValueError(f"capture time {capture_s!r}")
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if self._resampler is None or key != self._resampler_input:
                # planar at the input's layout: the channels are averaged below (swresample's downmix
                # would make a stereo source 3 dB louder than the same source in mono)
                self._resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=SAMPLE_RATE)
                self._resampler_input = key
            chunks = [
                np.asarray(f.to_ndarray(), dtype=np.float32).mean(axis=0) for f in self._resampler.resample(frame)
            ]
        except Exception as exc:  # noqa: BLE001 - a bad frame is dropped, never raised to the publisher's loop
            self._resampler = None
            self._drop("audio", exc)
            return
        samples = (np.concatenate(chunks) if len(chunks) != 1 else chunks[0]).astype(np.float32)
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        expected = round(capture_s * SAMPLE_RATE)
        with self._lock:
            self._last_media_s = time.monotonic()
            self._has_audio = True
            if self._cursor is None or abs(expected - self._cursor) > AUDIO_RESYNC_S * SAMPLE_RATE:
                self._cursor = expected
            self._ring.write(self._cursor, samples)
            self._cursor += len(samples)

    def close(self) -> None:
        """No more media: the feed leaves its stage (and so every recording) at once."""
        with self._lock:
            self._closed = True
            self._video.clear()
            self._ring = _AudioRing(1)
            stage = self._stage() if self._stage is not None else None
        if stage is not None:
            stage.remove(self)

    def picture_at(self, t: float) -> Picture | None:
        """The latest frame captured at or before local instant t (None when there is none left)."""
        with self._lock:
            video = self._video
            i = bisect.bisect_right([p.capture_s for p in video], t)
            return video[i - 1] if i else None

    def audio(self, start_s: float, count: int) -> Samples:
        """`count` samples at 48 kHz from local instant start_s; silence where nothing was captured."""
        start = round(start_s * SAMPLE_RATE)
        with self._lock:
            return self._ring.read(start, count)

    def audio_at(self, start: int, count: int) -> Samples:
        """`count` samples from absolute sample position start (= local seconds * 48000)."""
        with self._lock:
            return self._ring.read(start, count)

    def energy(self, end_s: float, window_s: float = 0.3) -> float:
        """Mean square of the samples captured in [end_s - window_s, end_s)."""
        count = max(1, round(window_s * SAMPLE_RATE))
        samples = self.audio(end_s - window_s, count)
        return float(np.mean(np.square(samples, dtype=np.float64)))


class Stage:
    """One room's feeds, in join order. Thread-safe."""

    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self._lock = threading.Lock()
        self._feeds: list[Feed] = []

    def add(self, feed: Feed) -> None:
        with self._lock:
            if feed not in self._feeds:
                self._feeds.append(feed)
            feed._stage = weakref.ref(self)
            # keep the stage alive while it has feeds, even when nobody else holds it
            _LIVE_STAGES.add(self)

    def remove(self, feed: Feed) -> None:
        with self._lock:
            if feed in self._feeds:
                self._feeds.remove(feed)
            if feed._stage is not None and feed._stage() is self:
                feed._stage = None
            if not self._feeds:
                _LIVE_STAGES.discard(self)

    def feeds(self) -> list[Feed]:
        with self._lock:
            return [f for f in self._feeds if not f.closed]


_LIVE_STAGES: set[Stage] = set()  # stages with feeds; a stage without feeds lives as long as someone holds it


class Stages:
    """The recorder's registry of stages by room id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: weakref.WeakValueDictionary[str, Stage] = weakref.WeakValueDictionary()

    def get(self, room_id: str) -> Stage:
        """The room's stage, created on first use; one without feeds is dropped once nobody holds it."""
        with self._lock:
            stage = self._stages.get(room_id)
            if stage is None:
                stage = Stage(room_id)
                self._stages[room_id] = stage
            return stage

    def __len__(self) -> int:
        with self._lock:
            return len(self._stages)
