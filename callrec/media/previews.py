"""Pictures of a stored recording, made with PyAV from its local file: a poster JPEG and a sprite of seek thumbnails
with its WebVTT track for a video, a waveform PNG for an audio-only recording.

The work is bounded whatever the recording's length: the poster decodes a few seconds of video after one seek, the
sprite decodes one keyframe per tile (at most `MAX_TILES` seeks, non-key frames skipped), and the waveform streams
the audio once at a low sample rate into one peak per pixel column. Memory holds one frame and the small images.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

# What is stored next to the recording `recordings/<room>/<id>.<ext>`: `recordings/<room>/<id>.<suffix>`.
POSTER = "poster.jpg"
SPRITE = "thumbs.jpg"
THUMBNAILS = "thumbs.vtt"
WAVEFORM = "waveform.png"
SUFFIXES = (POSTER, SPRITE, THUMBNAILS, WAVEFORM)

# The sprite's URL in the stored WebVTT track, relative to the track's own URL (`.../thumbnails.vtt`).
SPRITE_URL = "thumbnails.jpg"

POSTER_MAX_SIZE = 1280  # pixels, on the longer side
POSTER_FIRST_S = 3.0  # the poster is at least this far in (or half way through a shorter recording)
POSTER_MAX_FRAMES = 300  # frames decoded after the keyframe to reach the poster's instant
DARK_LUMA = 24.0  # a frame whose mean luma (0-255) is at or below this is near-black
TILE_WIDTH = 160
MAX_TILE_HEIGHT = 2 * TILE_WIDTH  # a very tall picture still makes a sprite of bounded size
MAX_TILES = 100
SPRITE_COLUMNS = 10
JPEG_QUALITY = 80
WAVEFORM_SIZE = (800, 160)
WAVEFORM_RATE = 8000  # Hz the audio is resampled to before its peaks are taken
WAVEFORM_COLOR = (59, 130, 246, 255)

_Gray = npt.NDArray[np.float64]


def preview_key(object_key: str, suffix: str) -> str:
    """The key of one of a recording's pictures, next to its file: `recordings/r/x.mp4` -> `recordings/r/x.<suffix>`."""
    return f"{object_key.rsplit('.', 1)[0]}.{suffix}"


@dataclass(frozen=True)
class SpriteLayout:
    interval_s: float  # each tile stands for this long
    count: int
    tile_width: int
    tile_height: int
    columns: int

    @property
    def rows(self) -> int:
        return math.ceil(self.count / self.columns)

    @property
    def size(self) -> tuple[int, int]:
        return self.columns * self.tile_width, self.rows * self.tile_height

    def tile_box(self, index: int) -> tuple[int, int, int, int]:
        """x, y, width, height of tile `index` in the sprite."""
        row, column = divmod(index, self.columns)
        return column * self.tile_width, row * self.tile_height, self.tile_width, self.tile_height


def sprite_layout(duration_s: float, width: int, height: int) -> SpriteLayout:
    """One tile per whole number of seconds, as few seconds as keep the tiles at most `MAX_TILES`."""
    if duration_s <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"no sprite for {duration_s} s of {width}x{height}")
    interval = float(max(1, math.ceil(duration_s / MAX_TILES)))
    count = max(1, math.ceil(duration_s / interval - 1e-9))
    tile_height = min(MAX_TILE_HEIGHT, max(2, round(TILE_WIDTH * height / width / 2) * 2))
    return SpriteLayout(interval, count, TILE_WIDTH, tile_height, min(SPRITE_COLUMNS, count))


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def thumbnails_vtt(layout: SpriteLayout, duration_s: float) -> str:
    """The WebVTT track: one cue per tile, back to back from 0 to the end, each `SPRITE_URL#xywh=...`."""
    lines = ["WEBVTT", ""]
    for index in range(layout.count):
        start = index * layout.interval_s
        end = min(duration_s, start + layout.interval_s) if index < layout.count - 1 else duration_s
        x, y, w, h = layout.tile_box(index)
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", f"{SPRITE_URL}#xywh={x},{y},{w},{h}", ""]
    return "\n".join(lines)


def with_secret(vtt: str, secret: str | None) -> str:
    """The track with `recordingSecret` on the sprite's URL, so that the caller who used it can load the sprite."""
    if not secret:
        return vtt
    return vtt.replace(f"{SPRITE_URL}#", f"{SPRITE_URL}?recordingSecret={quote(secret, safe='')}#")


# ------------------------------------------------------------------------- video


def _seek(container: InputContainer, stream: VideoStream, seconds: float) -> None:
    """To the keyframe at or before `seconds` of the stream's media time."""
    assert stream.time_base is not None
    offset = int(seconds / stream.time_base) + (stream.start_time or 0)
    container.seek(offset, stream=stream, backward=True, any_frame=False)


def _luma(frame: av.VideoFrame) -> float:
    rgb = frame.to_ndarray(width=64, height=36, format="rgb24").astype(np.float64)
    return float((rgb @ np.array([0.2126, 0.7152, 0.0722])).mean())


def _frame_at(container: InputContainer, stream: VideoStream, seconds: float) -> av.VideoFrame | None:
    """The frame showing at `seconds` (or the last one reached within `POSTER_MAX_FRAMES` after the keyframe)."""
    _seek(container, stream, seconds)
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    found = None
    for decoded, frame in enumerate(container.decode(stream)):
        found = frame
        if frame.time is None or frame.time - start >= seconds - 1e-3 or decoded >= POSTER_MAX_FRAMES:
            break
    return found


def poster_times(duration_s: float) -> list[float]:
    """Where to look for a poster, in order: a few seconds (10%) in, then later."""
    first = min(max(POSTER_FIRST_S, 0.1 * duration_s), 0.5 * duration_s)
    later = [duration_s * share for share in (0.25, 0.5, 0.75)]
    return [first, *(t for t in later if t > first)]


def _poster(container: InputContainer, stream: VideoStream, duration_s: float) -> bytes | None:
    """The first frame of `poster_times` that is not near-black (else the brightest), as a JPEG."""
    best: tuple[float, av.VideoFrame] | None = None
    for seconds in poster_times(duration_s):
        frame = _frame_at(container, stream, seconds)
        if frame is None:
            continue
        luma = _luma(frame)
        if best is None or luma > best[0]:
            best = (luma, frame)
        if luma > DARK_LUMA:
            break
    if best is None:
        return None
    frame = best[1]
    scale = min(1.0, POSTER_MAX_SIZE / frame.width, POSTER_MAX_SIZE / frame.height)
    width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
    return _jpeg(_picture(frame, width, height))


def _sprite(container: InputContainer, stream: VideoStream, duration_s: float) -> tuple[bytes, str] | None:
    """The sprite JPEG (one keyframe per tile) and its WebVTT track."""
    layout = sprite_layout(duration_s, stream.width, stream.height)
    sprite = Image.new("RGB", layout.size)
    stream.codec_context.skip_frame = "NONKEY"  # after a seek the first frame decoded is the keyframe
    tile: Image.Image | None = None
    for index in range(layout.count):
        _seek(container, stream, index * layout.interval_s)
        frame = next(iter(container.decode(stream)), None)
        if frame is not None:
            tile = _picture(frame, layout.tile_width, layout.tile_height)
        if tile is not None:  # past the last keyframe: the previous tile again
            sprite.paste(tile, layout.tile_box(index)[:2])
    if tile is None:
        return None
    return _jpeg(sprite), thumbnails_vtt(layout, duration_s)


def _picture(frame: av.VideoFrame, width: int, height: int) -> Image.Image:
    return Image.fromarray(frame.to_ndarray(width=width, height=height, format="rgb24"), "RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


# ------------------------------------------------------------------------- audio


def waveform(path: Path, duration_s: float, size: tuple[int, int] = WAVEFORM_SIZE) -> bytes:
    """A PNG of the audio's peaks (one per column, scaled to the loudest), centred, on a transparent background."""
    width, height = size
    peaks = np.zeros(width, dtype=np.float64)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=WAVEFORM_RATE)
    position = 0  # samples at WAVEFORM_RATE so far
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for chunk in resampler.resample(frame):
                samples = np.abs(chunk.to_ndarray().reshape(-1))
                columns = np.arange(position, position + samples.size) * (width / (duration_s * WAVEFORM_RATE))
                columns = np.clip(columns.astype(np.int64), 0, width - 1)
                position += samples.size
                if not samples.size:
                    continue
                starts = np.concatenate(([0], np.flatnonzero(np.diff(columns)) + 1))
                where = columns[starts]
                peaks[where] = np.maximum(peaks[where], np.maximum.reduceat(samples, starts))
    loudest = peaks.max()
    half = (height - 2) / 2
    reach = np.maximum(1.0, np.round(peaks / loudest * half)) if loudest > 0 else np.ones(width)
    rows = np.abs(np.arange(height) - (height - 1) / 2)[:, None]
    drawn = rows <= reach[None, :]
    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    pixels[drawn] = WAVEFORM_COLOR
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG", optimize=True)
    return out.getvalue()


# ------------------------------------------------------------------------- all


def make_previews(path: Path, duration_s: float) -> dict[str, bytes]:
    """The pictures of the recording at `path`, by suffix: poster, sprite and track for a video, waveform for audio
    only. Raises what PyAV raises on a file it cannot read (the caller decides that previews are optional)."""
    if duration_s <= 0:
        return {}
    with av.open(str(path)) as container:
        if container.streams.video:
            return _video_previews(container, container.streams.video[0], duration_s)
        if not container.streams.audio:
            return {}
    return {WAVEFORM: waveform(path, duration_s)}


def _video_previews(container: InputContainer, stream: VideoStream, duration_s: float) -> dict[str, bytes]:
    previews: dict[str, bytes] = {}
    if (poster := _poster(container, stream, duration_s)) is not None:
        previews[POSTER] = poster
    if (sprite := _sprite(container, stream, duration_s)) is not None:
        previews[SPRITE], vtt = sprite
        previews[THUMBNAILS] = vtt.encode()
    return previews
