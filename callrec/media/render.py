"""Render a call recording with PyAV: a composed layout of participant tiles plus one sine tone each.

Video goes to MP4 (H.264 + AAC); audio-only recordings go to Ogg/Opus. `LiveRecording` encodes in
real time on a background thread; `render_file` produces the same output as fast as possible.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

from callrec.domain.layout import Layout, RenderSpec

BACKGROUND: tuple[int, int, int] = (16, 16, 16)

SPEAKER_SHARE = 0.75  # fraction of the long side given to the speaker tile
OPUS_SAMPLE_RATE = 48_000
TONE_BASE_HZ = 220.0
MIX_PEAK = 0.3  # the mixed tones never exceed this amplitude (full scale = 1.0)
PROGRESS_PERIOD_S = 10.0  # the progress bar fills once per period, then restarts
MAX_LAG_S = 2.0  # a live recording this far behind skips frames rather than catch up
MAX_BATCH_S = 0.25  # a live recording encodes at most this much media per loop iteration

_RGB = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Tile:
    """A rectangle in pixels; x/y is the top-left corner."""

    x: int
    y: int
    width: int
    height: int


def _gap(width: int, height: int) -> int:
    """Even gap between neighbouring tiles (half of it at the frame edges)."""
    return 2 * max(1, min(width, height) // 240)


def _cell(x0: float, y0: float, x1: float, y1: float, gap: int) -> Tile:
    left, top, right, bottom = round(x0), round(y0), round(x1), round(y1)
    inset = gap // 2
    if right - left <= 2 * inset or bottom - top <= 2 * inset:
        inset = 0
    return Tile(
        left + inset,
        top + inset,
        max(1, right - left - 2 * inset),
        max(1, bottom - top - 2 * inset),
    )


def _grid(count: int, width: int, height: int, gap: int) -> list[Tile]:
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width / cols, height / rows
    tiles: list[Tile] = []
    for i in range(count):
        row, col = divmod(i, cols)
        in_row = min(cols, count - row * cols)
        offset = (cols - in_row) * cell_w / 2  # centre an incomplete last row
        x0 = offset + col * cell_w
        tiles.append(_cell(x0, row * cell_h, x0 + cell_w, (row + 1) * cell_h, gap))
    return tiles


def _speaker(count: int, width: int, height: int, gap: int) -> list[Tile]:
    if count == 1:
        return [_cell(0, 0, width, height, gap)]
    others = count - 1
    if height > width:  # portrait: speaker on top, the others side by side underneath
        split = height * SPEAKER_SHARE
        strip_w = width / others
        return [_cell(0, 0, width, split, gap)] + [
            _cell(i * strip_w, split, (i + 1) * strip_w, height, gap) for i in range(others)
        ]
    split = width * SPEAKER_SHARE
    strip_h = height / others
    return [_cell(0, 0, split, height, gap)] + [
        _cell(split, i * strip_h, width, (i + 1) * strip_h, gap) for i in range(others)
    ]


def tile_rects(layout: Layout, count: int, width: int, height: int) -> list[Tile]:
    """Where each participant is drawn, in participant order; participant 0 is the speaker."""
    if count < 0 or width <= 0 or height <= 0:
        raise ValueError(f"invalid tile request: count={count}, size={width}x{height}")
    if count == 0:
        return []
    gap = _gap(width, height)
    layout = Layout(layout)
    if layout is Layout.SINGLE_SPEAKER:
        return [_cell(0, 0, width, height, gap)]
    if layout is Layout.SPEAKER:
        return _speaker(count, width, height, gap)
    return _grid(count, width, height, gap)


def participant_color(key: str) -> tuple[int, int, int]:
    """A stable, saturated colour for a participant: every channel is >= 48, the brightest >= 191."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    hue = int.from_bytes(digest[0:2], "big") / 65536.0
    saturation = 0.55 + 0.20 * digest[2] / 255.0
    value = 0.75 + 0.20 * digest[3] / 255.0
    i = int(hue * 6.0) % 6
    f = hue * 6.0 - math.floor(hue * 6.0)
    p, q, t = (
        value * (1 - saturation),
        value * (1 - saturation * f),
        value * (1 - saturation * (1 - f)),
    )
    r, g, b = [
        (value, t, p),
        (q, value, p),
        (p, value, t),
        (p, q, value),
        (t, p, value),
        (value, p, q),
    ][i]
    return round(r * 255), round(g * 255), round(b * 255)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> str:
    if font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text + "…" if text else ""


def _draw_name(draw: ImageDraw.ImageDraw, tile: Tile, name: str) -> None:
    """Name at the tile's bottom-left, only if it stays clear of the tile's centre."""
    size = min(40, max(10, tile.height // 12))
    pad = max(2, size // 3)
    font = _font(size)
    stroke = max(1, size // 12)
    text = _fit(name, font, tile.width - 2 * pad - 2 * stroke)
    if not text:
        return
    x = tile.x + pad
    _, top, _, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
    y = tile.y + tile.height - pad - bottom
    if y + top <= tile.y + tile.height // 2 + 2:  # tile too small to label without covering its centre
        return
    draw.text(
        (x, y),
        text,
        font=font,
        fill=(255, 255, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0),
    )


def compose_frame(layout: Layout, participants: Sequence[tuple[str, str]], width: int, height: int) -> _RGB:
    """The static picture of a call: HxWx3 uint8 RGB."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    tiles = tile_rects(layout, len(participants), width, height)
    for tile, (key, name) in zip(tiles, participants, strict=False):
        draw.rectangle(
            (tile.x, tile.y, tile.x + tile.width - 1, tile.y + tile.height - 1),
            fill=participant_color(key),
        )
        _draw_name(draw, tile, name)
    return np.array(image, dtype=np.uint8)


def _rgb_to_yuv420p(rgb: _RGB) -> npt.NDArray[np.uint8]:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    yuv = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    return np.ascontiguousarray(yuv.to_ndarray(), dtype=np.uint8)


class _VideoSource:
    """Produces yuv420p frames cheaply: one converted picture, only the progress bar rows change."""

    def __init__(self, rgb: _RGB, framerate: int) -> None:
        height, width = rgb.shape[:2]
        self.height, self.width = height, width
        self.bar = 4 if height >= 90 else 2
        self.period = max(1, round(PROGRESS_PERIOD_S * framerate))
        track = rgb.copy()
        track[height - self.bar :] = BACKGROUND
        full = rgb.copy()
        full[height - self.bar :] = (235, 235, 235)
        self.work = _rgb_to_yuv420p(track)
        self.track = self._bar_planes(self.work).copy()
        self.full = self._bar_planes(_rgb_to_yuv420p(full)).copy()

    def _planes(self, yuv: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], ...]:
        # PyAV packs the three planes back to back, reshaped to rows of `width`; a
        # chroma plane does not start on a row boundary when height % 4 == 2.
        h, w = self.height, self.width
        flat = yuv.reshape(-1)
        y = flat[: h * w].reshape(h, w)
        u = flat[h * w : h * w * 5 // 4].reshape(h // 2, w // 2)
        v = flat[h * w * 5 // 4 :].reshape(h // 2, w // 2)
        return y, u, v

    def _bar_planes(self, yuv: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The bar rows of Y, then those of U and V side by side: shape (bar + bar / 2, width)."""
        y, u, v = self._planes(yuv)
        b = self.bar
        return np.vstack([y[-b:], np.hstack([u[-(b // 2) :], v[-(b // 2) :]])])

    def frame(self, index: int) -> av.VideoFrame:
        filled = (index % self.period + 1) * self.width // self.period
        filled -= filled % 2
        b, half = self.bar, self.width // 2
        y, u, v = self._planes(self.work)
        y[-b:, :filled] = self.full[:b, :filled]
        y[-b:, filled:] = self.track[:b, filled:]
        c = filled // 2
        u[-(b // 2) :, :c] = self.full[b:, :c]
        u[-(b // 2) :, c:] = self.track[b:, c:half]
        v[-(b // 2) :, :c] = self.full[b:, half : half + c]
        v[-(b // 2) :, c:] = self.track[b:, half + c :]
        return av.VideoFrame.from_ndarray(self.work, format="yuv420p")


class _ToneSource:
    """One sine tone per participant, mixed; continuous across calls."""

    def __init__(self, count: int, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        nyquist_room = sample_rate / 2 - 1000
        freqs = [TONE_BASE_HZ * (i + 2) for i in range(count)]
        self.freqs = np.array([f if f < nyquist_room else TONE_BASE_HZ * (2 + i % 8) for i, f in enumerate(freqs)])
        self.amplitude = MIX_PEAK / max(1, count)

    def samples(self, start: int, count: int) -> npt.NDArray[np.float32]:
        if self.freqs.size == 0:
            return np.zeros(count, dtype=np.float32)
        n = np.arange(start, start + count, dtype=np.float64)
        mixed = np.zeros(count, dtype=np.float64)
        for f in self.freqs:
            cycles = (n * f / self.sample_rate) % 1.0
            mixed += np.sin(2 * np.pi * cycles)
        return (mixed * self.amplitude).astype(np.float32)


class _Encoder:
    """Owns the output container; `advance_to(t)` encodes everything up to media time t."""

    def __init__(
        self,
        path: Path,
        layout: Layout,
        participants: Sequence[tuple[str, str]],
        spec: RenderSpec,
        audio_only: bool,
    ) -> None:
        if not audio_only and (spec.width % 2 or spec.height % 2):
            raise ValueError(f"H.264 yuv420p needs even dimensions, got {spec.width}x{spec.height}")
        if spec.framerate <= 0:
            raise ValueError(f"framerate must be positive, got {spec.framerate}")
        self.framerate = spec.framerate
        self.video: VideoStream | None = None
        self.source: _VideoSource | None = None
        self.frames = 0  # encoded video frames
        self.next_pts = 0  # in 1/framerate; > frames only if frames were skipped
        self.audio_samples = 0
        self.container: OutputContainer
        if audio_only:
            self.sample_rate = OPUS_SAMPLE_RATE
            self.container = av.open(str(path), mode="w", format="ogg")
        else:
            self.sample_rate = spec.audio_sample_rate
            self.container = av.open(
                str(path),
                mode="w",
                format="mp4",
                container_options={"movflags": "+faststart"},
            )
        try:
            if not audio_only:
                self.video = self._add_video(spec)
                self.source = _VideoSource(
                    compose_frame(layout, participants, spec.width, spec.height),
                    spec.framerate,
                )
            self.audio = self._add_audio("libopus" if audio_only else "aac", spec.audio_bitrate_kbps)
            self.tones = _ToneSource(len(participants), self.sample_rate)
            self.container.start_encoding()  # opens the codecs: bad settings fail here, not later
        except BaseException:
            self.container.close()
            raise

    def _add_video(self, spec: RenderSpec) -> VideoStream:
        profile = spec.h264_profile.lower()
        if profile not in ("baseline", "main", "high"):
            raise ValueError(f"unsupported H.264 profile {spec.h264_profile!r}")
        options = {"preset": "ultrafast", "profile": profile}
        # ultrafast turns off every tool beyond Baseline, so x264 would label any stream
        # "Constrained Baseline"; switching CABAC (and 8x8 transforms for High) back on
        # gives the profile asked for at almost no cost in speed.
        if profile != "baseline":
            options["x264-params"] = "cabac=1:8x8dct=1" if profile == "high" else "cabac=1"
        stream = self.container.add_stream("libx264", rate=spec.framerate, options=options)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.bit_rate = spec.video_bitrate_kbps * 1000
        ctx = stream.codec_context
        ctx.gop_size = max(1, round(spec.keyframe_interval_s * spec.framerate))
        ctx.time_base = Fraction(1, spec.framerate)
        # Tag what _rgb_to_yuv420p produced (BT.709, limited range), so players and
        # decoders convert back to the same RGB.
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = ctx.color_range = 1
        return stream

    def _add_audio(self, codec: str, bitrate_kbps: int) -> AudioStream:
        stream = self.container.add_stream(codec, rate=self.sample_rate)
        if not isinstance(stream, AudioStream):
            raise TypeError(f"{codec} is not an audio codec")
        stream.layout = "mono"
        stream.bit_rate = bitrate_kbps * 1000
        return stream

    @property
    def video_time(self) -> float:
        return self.next_pts / self.framerate if self.video is not None else 0.0

    @property
    def audio_time(self) -> float:
        return self.audio_samples / self.sample_rate

    @property
    def duration(self) -> float:
        return max(self.video_time, self.audio_time)

    def advance_to(self, t: float, *, final: bool = False) -> None:
        """Encode video frames and audio samples up to media time t seconds.

        Audio is written in whole codec frames except on the final call, so there is no padding mid-stream.
        """
        if self.video is not None and self.source is not None:
            target = round(t * self.framerate) if final else math.floor(t * self.framerate)
            while self.next_pts < target:
                frame = self.source.frame(self.next_pts)
                frame.pts, frame.time_base = self.next_pts, Fraction(1, self.framerate)
                self.container.mux(self.video.encode(frame))
                self.next_pts += 1
                self.frames += 1
        audio_target = round(t * self.sample_rate)
        if not final:
            chunk = self.audio.codec_context.frame_size or 960
            audio_target = self.audio_samples + (audio_target - self.audio_samples) // chunk * chunk
        while audio_target > self.audio_samples:
            count = min(audio_target - self.audio_samples, self.sample_rate)
            data = self.tones.samples(self.audio_samples, count)
            fmt = self.audio.codec_context.format.name
            array = data.reshape(1, -1)
            if fmt == "s16":
                array = (array * 32767).astype(np.int16)
            elif fmt not in ("flt", "fltp"):
                fmt = "flt"  # PyAV resamples to whatever the encoder wants
            chunk_frame = av.AudioFrame.from_ndarray(array, format=fmt, layout="mono")
            chunk_frame.sample_rate = self.sample_rate
            chunk_frame.pts = self.audio_samples
            chunk_frame.time_base = Fraction(1, self.sample_rate)
            self.container.mux(self.audio.encode(chunk_frame))
            self.audio_samples += count

    def skip_to(self, t: float) -> None:
        """Drop video frames (not encode them) so that the next frame is the one due at time t."""
        self.next_pts = max(self.next_pts, math.floor(t * self.framerate))

    def finish(self, t: float) -> None:
        self.advance_to(t, final=True)
        if self.video is not None:
            self.container.mux(self.video.encode(None))
        self.container.mux(self.audio.encode(None))
        self.container.close()

    def abort(self) -> None:
        # already failing: the first error is the one to report
        with contextlib.suppress(Exception):
            self.container.close()


class LiveRecording:
    """Encodes a call in real time on a background thread until stop()."""

    def __init__(
        self,
        path: Path,
        layout: Layout,
        participants: Sequence[tuple[str, str]],
        spec: RenderSpec,
        audio_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.layout = layout
        self.participants = list(participants)
        self.spec = spec
        self.audio_only = audio_only
        self._encoder: _Encoder | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started_at = 0.0
        self._stop_at: float | None = None
        self._error: BaseException | None = None
        self._duration: float | None = None

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def frames(self) -> int:
        return self._encoder.frames if self._encoder is not None else 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("recording already started")
        self._encoder = _Encoder(self.path, self.layout, self.participants, self.spec, self.audio_only)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recording:{self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        encoder = self._encoder
        assert encoder is not None
        interval = 1.0 / (encoder.framerate if not self.audio_only else 50)
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - self._started_at
                if encoder.video is not None and elapsed - encoder.video_time > MAX_LAG_S:
                    encoder.skip_to(elapsed - interval)
                # bounded batches, so a slow machine re-checks its lag between them
                encoded = encoder.video_time if encoder.video is not None else encoder.audio_time
                encoder.advance_to(min(elapsed, encoded + MAX_BATCH_S))
                self._stop.wait(interval)
            stop_at = self._stop_at if self._stop_at is not None else time.monotonic()
            encoder.finish(stop_at - self._started_at)
            self._duration = encoder.duration
        except BaseException as exc:  # noqa: BLE001 - handed to stop() / error
            self._error = exc
            encoder.abort()

    def stop(self) -> float:
        """Encode up to now, close the file and return its duration in seconds."""
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


def render_file(
    path: Path,
    layout: Layout,
    participants: Sequence[tuple[str, str]],
    spec: RenderSpec,
    duration_s: float,
    audio_only: bool = False,
) -> None:
    """Same output as LiveRecording for `duration_s` seconds, encoded as fast as possible."""
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    encoder = _Encoder(Path(path), layout, participants, spec, audio_only)
    try:
        step = 0.5  # small steps keep the muxer's interleaving queue (and memory) small
        t = step
        while t < duration_s:
            encoder.advance_to(t)
            t += step
        encoder.finish(duration_s)
    except BaseException:
        encoder.abort()
        raise
