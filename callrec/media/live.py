"""Recording a room's live feeds in real time: composited video per layout and the mix of everyone's audio.

Output media time m shows what was captured at local instant `origin + m` (origin: when the recording
started), encoded a playout delay behind the local clock so that the media captured by then has arrived.
Video frame n shows each feed's latest frame captured at or before `origin + n / fps` (the last one held
through gaps); audio is the sum of every feed's samples for the same instants, soft-clipped, silence where
there are none. When compositing falls behind, frames repeat (or, far behind, are skipped) instead of drifting.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.compose import Compositor
from callrec.media.render import (
    BT601,
    FRAGMENT_S,
    abort_output,
    add_h264,
    add_mono_audio,
    close_output,
    encode_mono,
    open_output,
)
from callrec.media.stage import SAMPLE_RATE, Stage
from callrec.metrics import DROPPED_FRAMES, ENCODE_LAG

PLAYOUT_DELAY_S = 0.5  # media is encoded this far behind the local clock
CATCH_UP_FRAMES = 2  # more frames than this due at once: the older ones repeat the last picture
MAX_LAG_S = 1.0  # further behind than this: frames are skipped (the player holds the last one)
_BEHIND = DROPPED_FRAMES.labels("behind")
AUDIO_STEP_S = 0.02  # an audio-only recording encodes this often
CLIP_KNEE = 0.75  # the mix is linear below this amplitude and bends smoothly towards 1.0 above it


def soft_clip(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Linear below CLIP_KNEE, then a tanh curve that never exceeds 1.0."""
    magnitude = np.abs(samples)
    over = magnitude > CLIP_KNEE
    if not np.any(over):
        return samples
    room = 1.0 - CLIP_KNEE
    bent = CLIP_KNEE + room * np.tanh((magnitude[over] - CLIP_KNEE) / room)
    out = samples.copy()
    out[over] = np.sign(samples[over]) * bent
    return out


class _Output:
    """The file being written: H.264 video (unless audio only) and AAC or Opus audio."""

    def __init__(self, path: Path, spec: RenderSpec, audio_only: bool, *, fragmented: bool = False) -> None:
        if not audio_only and (spec.width % 2 or spec.height % 2):
            raise ValueError(f"H.264 yuv420p needs even dimensions, got {spec.width}x{spec.height}")
        if spec.framerate <= 0:
            raise ValueError(f"framerate must be positive, got {spec.framerate}")
        if fragmented:  # every fragment starts on a keyframe: each one decodes on its own
            spec = replace(spec, keyframe_interval_s=min(spec.keyframe_interval_s, FRAGMENT_S))
        self.sample_rate = SAMPLE_RATE if audio_only else spec.audio_sample_rate
        self.container: OutputContainer = open_output(path, audio_only, fragmented=fragmented)
        self.video: VideoStream | None = None
        try:
            if not audio_only:
                self.video = add_h264(self.container, spec, BT601)  # the compositor's planes are BT.601
            self.audio: AudioStream = add_mono_audio(
                self.container, "libopus" if audio_only else "aac", self.sample_rate, spec.audio_bitrate_kbps
            )
            self.container.start_encoding()  # opens the codecs: bad settings fail here, not later
        except BaseException:
            self.container.close()
            raise
        self.resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
            if self.sample_rate != SAMPLE_RATE
            else None
        )
        self.pending: npt.NDArray[np.float32] = np.zeros(0, np.float32)  # mixed, not yet encoded (output rate)
        self.samples = 0  # audio samples encoded

    def encode_video(self, frame: av.VideoFrame, pts: int, framerate: int) -> None:
        assert self.video is not None
        frame.pts, frame.time_base = pts, Fraction(1, framerate)
        self.container.mux(self.video.encode(frame))

    def add_audio(self, mixed: npt.NDArray[np.float32], *, final: bool = False) -> None:
        """Queues 48 kHz samples and encodes whole codec frames (everything when final)."""
        if self.resampler is not None:
            chunk = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="flt", layout="mono")
            chunk.sample_rate = SAMPLE_RATE
            frames = self.resampler.resample(chunk) + (self.resampler.resample(None) if final else [])
            mixed = np.concatenate([self.pending] + [f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)
        else:
            mixed = np.concatenate([self.pending, mixed])
        size = self.audio.codec_context.frame_size or 960
        count = len(mixed) if final else len(mixed) // size * size
        self.pending = mixed[count:]
        for start in range(0, count, size):
            part = mixed[start : min(count, start + size)]
            encode_mono(self.container, self.audio, part, self.samples, self.sample_rate)
            self.samples += len(part)

    def finish(self) -> None:
        close_output(self.container, self.video, self.audio)

    def abort(self) -> None:
        abort_output(self.container)


class RoomRecording:
    """Records a room's stage in real time on a background thread until stop().

    `placeholders`: (participant id, name) of participants known to be in the call; those without a live
    feed get a name tile (and add silence)."""

    def __init__(
        self,
        path: Path,
        layout: Layout,
        spec: RenderSpec,
        stage: Stage,
        placeholders: Sequence[tuple[str, str]],
        audio_only: bool = False,
        playout_delay_s: float = PLAYOUT_DELAY_S,
        fragmented: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fragmented = fragmented  # usable while it grows: see render.open_output
        self.spec = spec
        self.stage = stage
        self.audio_only = audio_only
        self.playout_delay_s = playout_delay_s
        self.compositor = None if audio_only else Compositor(layout, spec.width, spec.height, placeholders)
        self.frames = 0  # video frames encoded
        self.repeated = 0  # of which (or skipped) because compositing fell behind
        self.cpu_s = 0.0  # CPU time of the encoding thread (not counting the codecs' own threads)
        self._output: _Output | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._origin = 0.0
        self._stop_at: float | None = None
        self._error: BaseException | None = None
        self._duration: float | None = None
        self._next_pts = 0
        self._mixed = 0  # 48 kHz samples mixed so far
        self._last: av.VideoFrame | None = None

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def origin(self) -> float:
        """The local instant (time.monotonic()) that is media time 0."""
        return self._origin

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("recording already started")
        self._output = _Output(self.path, self.spec, self.audio_only, fragmented=self.fragmented)
        self._origin = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recording:{self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        output = self._output
        assert output is not None
        step = AUDIO_STEP_S if self.audio_only else 1.0 / self.spec.framerate
        try:
            while not self._stop.is_set():
                now_m = time.monotonic() - self._origin - self.playout_delay_s
                if now_m > 0:
                    ENCODE_LAG.observe(max(0.0, now_m - self._media_time()))
                self._advance(output, now_m)
                due = self._origin + self.playout_delay_s + (math.floor(self._media_time() / step) + 1) * step
                self._stop.wait(max(0.0, due - time.monotonic()))
            stop_at = self._stop_at if self._stop_at is not None else time.monotonic()
            # what was captured until the stop arrives within the playout delay
            while (left := stop_at + self.playout_delay_s - time.monotonic()) > 0:
                self._advance(output, time.monotonic() - self._origin - self.playout_delay_s)
                time.sleep(min(left, step))
            end = stop_at - self._origin
            self._advance(output, end, final=True)
            output.finish()
            self._duration = max(self._next_pts / self.spec.framerate if output.video else 0.0, end)
            self._duration = max(self._duration, output.samples / output.sample_rate)
        except BaseException as exc:  # noqa: BLE001 - handed to stop() / error
            self._error = exc
            output.abort()
        finally:
            self.cpu_s = time.thread_time()

    def _media_time(self) -> float:
        if self.audio_only:
            return self._mixed / SAMPLE_RATE
        return self._next_pts / self.spec.framerate

    def _advance(self, output: _Output, m: float, *, final: bool = False) -> None:
        """Encodes video and audio up to media time m."""
        if m <= 0:
            return
        if output.video is not None:
            self._advance_video(output, m, final)
        target = round(m * SAMPLE_RATE)
        if target > self._mixed:
            output.add_audio(self._mix(self._mixed, target - self._mixed), final=final)
            self._mixed = target
        elif final:
            output.add_audio(np.zeros(0, np.float32), final=True)

    def _advance_video(self, output: _Output, m: float, final: bool) -> None:
        assert self.compositor is not None
        fps = self.spec.framerate
        # frames [next, due) start at or before m; a recording stopped within half a frame still gets one
        due = max(1, round(m * fps)) if final else math.floor(m * fps) + 1
        repeated = self.repeated
        if due - self._next_pts > MAX_LAG_S * fps and self._last is not None:
            skipped = due - CATCH_UP_FRAMES - self._next_pts
            self.repeated += skipped
            self._next_pts += skipped
        while self._next_pts < due:
            pts = self._next_pts
            if due - pts > CATCH_UP_FRAMES and self._last is not None:
                frame = self._last
                self.repeated += 1
            else:
                frame = self.compositor.frame(self._origin + pts / fps, self.stage.feeds())
                self._last = frame
            output.encode_video(frame, pts, fps)
            self._next_pts += 1
            self.frames += 1
        if self.repeated > repeated:
            _BEHIND.inc(self.repeated - repeated)

    def _mix(self, start: int, count: int) -> npt.NDArray[np.float32]:
        """48 kHz samples [start, start + count) of media time: the sum of every feed, soft-clipped."""
        mixed = np.zeros(count, np.float32)
        origin = round(self._origin * SAMPLE_RATE)
        for feed in self.stage.feeds():
            if feed.has_audio:
                mixed += feed.audio_at(origin + start, count)
        return soft_clip(mixed)

    def stop(self) -> float:
        """Encodes what was captured until now (waiting out the playout delay), closes the file and returns
        its duration in seconds."""
        if self._thread is None:
            raise RuntimeError("recording was never started")
        if self._stop_at is None:
            self._stop_at = time.monotonic()
            self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._duration is not None
        return self._duration
