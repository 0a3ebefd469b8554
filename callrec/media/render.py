"""The synthetic test source: a composed layout of participant tiles plus one sine tone each, encoded with PyAV.

Video goes to MP4 (H.264 + AAC); audio-only recordings go to Ogg/Opus. `render_file` makes such a file as fast as
possible (tests use it for uploads); the recorder records real media with `live.RoomRecording`, which shares the
output helpers below.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream
from PIL import Image, ImageDraw

from callrec.domain.layout import Layout, RenderSpec
from callrec.media.tiles import BACKGROUND as BACKGROUND
from callrec.media.tiles import Tile as Tile
from callrec.media.tiles import draw_name, participant_color, tile_rects

__all__ = ["BACKGROUND", "Tile", "compose_frame", "participant_color", "render_file", "tile_rects"]

OPUS_SAMPLE_RATE = 48_000
TONE_BASE_HZ = 220.0
MIX_PEAK = 0.3  # the mixed tones never exceed this amplitude (full scale = 1.0)
PROGRESS_PERIOD_S = 10.0  # the progress bar fills once per period, then restarts

_RGB = npt.NDArray[np.uint8]


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
        draw_name(draw, tile, name)
    return np.array(image, dtype=np.uint8)


BT709 = 1  # AVCOL_SPC / AVCOL_PRI / AVCOL_TRC value of BT.709
BT601 = 6  # SMPTE 170M (BT.601 525-line); what swscale uses by default between RGB and YUV


FRAGMENT_S = 2.0  # a fragmented MP4 holds at most this much media per fragment


def open_output(path: Path, audio_only: bool, *, fragmented: bool = False) -> OutputContainer:
    """An MP4 for video recordings, an Ogg for audio-only ones.

    `fragmented`: the file is usable while it grows, so that any prefix of it holds every fragment (MP4) or page
    (Ogg) completed by then. An MP4 gets an empty moov up front and then moof+mdat fragments, cut at each keyframe
    and after at most FRAGMENT_S (the caller should ask for keyframes at least that often: see `live._Output`);
    Ogg is streamable as it is. Either is flushed to the file as each fragment or page completes: otherwise the
    bytes sit in the writer's buffer, and the file on disk grows only in large bursts.
    """
    flush = {"flush_packets": "1"} if fragmented else {}
    if audio_only:
        return av.open(str(path), mode="w", format="ogg", container_options=flush)
    if fragmented:
        options = {
            "movflags": "frag_keyframe+empty_moov+default_base_moof",
            "frag_duration": str(round(FRAGMENT_S * 1_000_000)),  # microseconds
            **flush,
        }
        return av.open(str(path), mode="w", format="mp4", container_options=options)
    return av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"})


def add_h264(container: OutputContainer, spec: RenderSpec, colour: int) -> VideoStream:
    """The H.264 stream of `spec`, yuv420p limited range tagged with colour space `colour` (BT709 or BT601)."""
    profile = spec.h264_profile.lower()
    if profile not in ("baseline", "main", "high"):
        raise ValueError(f"unsupported H.264 profile {spec.h264_profile!r}")
    options = {"preset": "ultrafast", "profile": profile}
    # ultrafast turns off every tool beyond Baseline, so x264 would label any stream
    # "Constrained Baseline"; switching CABAC (and 8x8 transforms for High) back on
    # gives the profile asked for at almost no cost in speed.
    if profile != "baseline":
        options["x264-params"] = "cabac=1:8x8dct=1" if profile == "high" else "cabac=1"
    stream = container.add_stream("libx264", rate=spec.framerate, options=options)
    stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
    stream.bit_rate = spec.video_bitrate_kbps * 1000
    ctx = stream.codec_context
    ctx.gop_size = max(1, round(spec.keyframe_interval_s * spec.framerate))
    ctx.time_base = Fraction(1, spec.framerate)
    ctx.colorspace = ctx.color_primaries = ctx.color_trc = colour
    ctx.color_range = 1  # limited (MPEG) range
    return stream


def add_mono_audio(container: OutputContainer, codec: str, sample_rate: int, bitrate_kbps: int) -> AudioStream:
    stream = container.add_stream(codec, rate=sample_rate)
    if not isinstance(stream, AudioStream):
        raise TypeError(f"{codec} is not an audio codec")
    stream.layout = "mono"
    stream.bit_rate = bitrate_kbps * 1000
    return stream


def encode_mono(
    container: OutputContainer, stream: AudioStream, samples: npt.NDArray[np.float32], pts: int, sample_rate: int
) -> None:
    """Encodes and muxes mono samples (-1..1) at `pts` (in samples), in the encoder's own sample format."""
    fmt = stream.codec_context.format.name
    row = np.ascontiguousarray(samples.reshape(1, -1), dtype=np.float32)
    if fmt == "s16":
        frame = av.AudioFrame.from_ndarray((row * 32767).astype(np.int16), format=fmt, layout="mono")
    else:  # PyAV resamples float to whatever float format the encoder wants
        frame = av.AudioFrame.from_ndarray(row, format=fmt if fmt in ("flt", "fltp") else "flt", layout="mono")
    frame.sample_rate = sample_rate
    frame.pts, frame.time_base = pts, Fraction(1, sample_rate)
    container.mux(stream.encode(frame))


def close_output(container: OutputContainer, *streams: VideoStream | AudioStream | None) -> None:
    """Flushes each encoder into the file, then closes it (an MP4 gets its index here)."""
    for stream in streams:
        if stream is not None:
            container.mux(stream.encode(None))
    container.close()


def abort_output(container: OutputContainer) -> None:
    """Closes a file that is already failing: the first error is the one to report."""
    with contextlib.suppress(Exception):
        container.close()


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
        self.next_pts = 0  # in 1/framerate
        self.audio_samples = 0
        self.sample_rate = OPUS_SAMPLE_RATE if audio_only else spec.audio_sample_rate
        self.container = open_output(path, audio_only)
        try:
            if not audio_only:
                # Tag what _rgb_to_yuv420p produces, so players convert back to the same RGB.
                self.video = add_h264(self.container, spec, BT709)
                self.source = _VideoSource(
                    compose_frame(layout, participants, spec.width, spec.height),
                    spec.framerate,
                )
            self.audio = add_mono_audio(
                self.container, "libopus" if audio_only else "aac", self.sample_rate, spec.audio_bitrate_kbps
            )
            self.tones = _ToneSource(len(participants), self.sample_rate)
            self.container.start_encoding()  # opens the codecs: bad settings fail here, not later
        except BaseException:
            self.container.close()
            raise

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
            samples = self.tones.samples(self.audio_samples, count)
            encode_mono(self.container, self.audio, samples, self.audio_samples, self.sample_rate)
            self.audio_samples += count

    def finish(self, t: float) -> None:
        self.advance_to(t, final=True)
        close_output(self.container, self.video, self.audio)

    def abort(self) -> None:
        abort_output(self.container)


def render_file(
    path: Path,
    layout: Layout,
    participants: Sequence[tuple[str, str]],
    spec: RenderSpec,
    duration_s: float,
    audio_only: bool = False,
) -> None:
    """A synthetic recording of `duration_s` seconds, encoded as fast as possible."""
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
