"""Reading a recording back as a viewer would: colours where the layout puts tiles, tones in the sound."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from callrec.domain.layout import Layout
from callrec.media.tiles import Tile, tile_rects

Rgb = tuple[int, int, int]
Floats = npt.NDArray[np.float64]


def tile_centres(layout: Layout, count: int, width: int, height: int) -> list[tuple[int, int]]:
    return [(t.x + t.width // 2, t.y + t.height // 2) for t in tile_rects(layout, count, width, height)]


def patch_colour(rgb: npt.NDArray[Any], x: int, y: int, radius: int = 3) -> Rgb:
    patch = rgb[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].reshape(-1, 3)
    r, g, b = (int(c) for c in patch.mean(axis=0))
    return r, g, b


def nearest(colour: Rgb, palette: dict[str, Rgb], tolerance: float = 40.0) -> str | None:
    """The palette name closest to `colour`, or None when nothing is within `tolerance` (RGB distance)."""
    best, distance = None, tolerance
    for name, ref in palette.items():
        d = float(np.linalg.norm(np.array(colour, dtype=np.float64) - np.array(ref, dtype=np.float64)))
        if d <= distance:
            best, distance = name, d
    return best


def sample_video(path: Path, points: dict[str, Sequence[tuple[int, int]]]) -> list[tuple[float, dict[str, list[Rgb]]]]:
    """Per decoded frame: its time in seconds and the colours at each named set of points (bounded memory)."""
    samples: list[tuple[float, dict[str, list[Rgb]]]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            t = float(frame.time or 0.0)
            samples.append((t, {key: [patch_colour(rgb, x, y) for x, y in pts] for key, pts in points.items()}))
    return samples


def repeated_frames(path: Path, threshold: int = 24) -> tuple[int, int]:
    """(frames, frames that look the same as the one before): a live picture changes, a frozen one does not."""
    frames, repeated = 0, 0
    previous: npt.NDArray[np.int16] | None = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray").astype(np.int16)
            if previous is not None and int(np.abs(gray - previous).max()) < threshold:
                repeated += 1
            previous, frames = gray, frames + 1
    return frames, repeated


def video_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def decode_audio(path: Path) -> tuple[int, Floats, float]:
    """(sample rate, mono samples in [-1, 1], time of the first sample in seconds)."""
    chunks: list[Floats] = []
    start: float | None = None
    rate = 48_000
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            if start is None:
                start = float(frame.time or 0.0)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.float64))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.float64))
    return rate, (np.concatenate(chunks) if chunks else np.zeros(0)), start or 0.0


def band_level(samples: Floats, rate: int, hz: float, width_hz: float = 8.0) -> float:
    """RMS-like amplitude of the band hz ± width_hz (Hann-windowed spectrum)."""
    if len(samples) < 64:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) * 2 / (len(samples) * 0.5)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs >= hz - width_hz) & (freqs <= hz + width_hz)
    return float(spectrum[band].max()) if band.any() else 0.0


def strongest_tones(samples: Floats, rate: int, count: int, min_hz: float = 50.0) -> list[float]:
    """The `count` strongest spectral peaks (local maxima at least 30 Hz apart), by frequency, strongest first."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    order = np.argsort(spectrum)[::-1]
    peaks: list[float] = []
    for i in order:
        f = float(freqs[i])
        local_max = 0 < i < len(spectrum) - 1 and spectrum[i - 1] <= spectrum[i] >= spectrum[i + 1]
        if not local_max or f < min_hz or any(abs(f - p) < 30 for p in peaks):
            continue
        peaks.append(f)
        if len(peaks) == count:
            break
    return peaks


def onset(samples: Floats, rate: int, hz: float, *, hop_s: float = 0.01, window_s: float = 0.04) -> float | None:
    """Seconds into `samples` at which the hz tone first reaches half of its final level (None: never)."""
    window, hop = int(window_s * rate), int(hop_s * rate)
    if len(samples) < 4 * window:
        return None
    levels = [
        band_level(samples[i : i + window], rate, hz, width_hz=60.0) for i in range(0, len(samples) - window, hop)
    ]
    final = float(np.median(levels[-max(1, len(levels) // 5) :]))
    if final < 0.01:
        return None
    for i, level in enumerate(levels):
        if level >= final / 2:
            return (i * hop + window / 2) / rate
    return None


__all__ = [
    "Tile",
    "band_level",
    "decode_audio",
    "nearest",
    "onset",
    "repeated_frames",
    "sample_video",
    "strongest_tones",
    "tile_centres",
    "video_size",
]
