"""Explicit test source: generated camera/microphone tracks, and a command-line WHIP publisher of them.

`PatternVideoTrack` sends a solid colour with a small bar moving along the bottom edge (so no two
consecutive frames are identical) and, optionally, a full white frame every `flash_every_s` seconds.
`ToneAudioTrack` sends a sine tone (optionally silent until `start_s`) and, optionally, a short beep at the
same instants as the flashes. Both are paced in real time by their pts; tracks built with one `SignalClock`
(see `publisher_tracks`) share their time origin, so a flash and its beep carry the same capture instant.

`python -m callrec.media.testsignals --whip-url URL --token TOKEN` publishes them from the command line with
`whip_client.publish_until`, reconnecting by itself when the connection or the recorder goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import math
import re
import signal
import time
from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from callrec.media.compose import yuv
from callrec.media.whip_client import WhipError, publish_until

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz
BAR_HEIGHT_SHARE = 0.1  # the moving bar occupies the bottom tenth of the frame
BAR_WIDTH_SHARE = 1 / 16
BAR_PERIOD_FRAMES = 32  # the bar crosses the frame once every this many frames
WHITE: tuple[int, int, int] = (255, 255, 255)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 70, 230),
    "yellow": (230, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
    "orange": (240, 140, 30),
    "purple": (130, 60, 200),
}

_Array = npt.NDArray[np.uint8]


def parse_color(value: str) -> tuple[int, int, int]:
    """A colour name of `COLORS` or `#rrggbb`."""
    named = COLORS.get(value.strip().lower())
    if named is not None:
        return named
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", value.strip())
    if match is None:
        raise ValueError(f"unknown colour {value!r}: use one of {', '.join(COLORS)} or #rrggbb")
    raw = int(match.group(1), 16)
    return (raw >> 16) & 0xFF, (raw >> 8) & 0xFF, raw & 0xFF


def flash_index(t_s: float, flash_every_s: float | None) -> int | None:
    """Which flash (1, 2, ...) is on at media time `t_s`, given it lasts from k*flash_every_s; None if none."""
    if flash_every_s is None or flash_every_s <= 0 or t_s <= 0:
        return None
    k = math.floor(t_s / flash_every_s + 1e-9)
    return k if k >= 1 else None


class SignalClock:
    """A shared time origin for real-time pacing: set when the first track asks for its first frame."""

    def __init__(self) -> None:
        self._origin: float | None = None

    @property
    def origin(self) -> float:
        if self._origin is None:
            self._origin = time.monotonic()
        return self._origin

    def elapsed(self) -> float:
        """Media seconds since the origin (0 before any track started): e.g. `tone.start_s = clock.elapsed() + 1`."""
        return 0.0 if self._origin is None else time.monotonic() - self._origin

    async def wait_until(self, media_s: float) -> None:
        delay = self.origin + media_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class PatternVideoTrack(MediaStreamTrack):
    """A solid colour, a bar moving along the bottom edge, and a white frame at each flash instant.

    Frame n has pts n/fps (time base 1/90000). A flash frame is the first frame whose pts is at or after
    k*flash_every_s (k >= 1): with `flash_every_s * fps` an integer, its pts is exactly the flash instant.
    """

    kind = "video"

    def __init__(
        self,
        color: tuple[int, int, int] | str,
        *,
        width: int = 320,
        height: int = 180,
        fps: float = 15.0,
        flash_every_s: float | None = None,
        clock: SignalClock | None = None,
    ) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"video size must be even and at least 16x16, not {width}x{height}")
        if not 0 < fps <= 120:
            raise ValueError(f"fps must be in (0, 120], not {fps}")
        self.color = parse_color(color) if isinstance(color, str) else color
        self.width, self.height, self.fps = width, height, fps
        self.flash_every_s = flash_every_s
        self.clock = clock or SignalClock()
        self._index = 0
        self._last_flash: int | None = None
        self._base = _solid_yuv420(self.color, width, height)
        self._white = _solid_yuv420(WHITE, width, height)

    def frame_at(self, index: int) -> av.VideoFrame:
        """Frame number `index` (pure: the same index gives the same picture)."""
        t_s = index / self.fps
        flash = flash_index(t_s, self.flash_every_s)
        previous = flash_index((index - 1) / self.fps, self.flash_every_s) if index > 0 else None
        if flash is not None and flash != previous:
            planes = self._white.copy()
        else:
            planes = self._base.copy()
            self._draw_bar(planes, index)
        frame = av.VideoFrame.from_ndarray(planes.reshape(self.height * 3 // 2, self.width), format="yuv420p")
        frame.pts = round(index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame

    def _draw_bar(self, planes: _Array, index: int) -> None:
        w, h = self.width, self.height
        bar_w = max(2, int(w * BAR_WIDTH_SHARE)) & ~1
        bar_h = max(2, int(h * BAR_HEIGHT_SHARE)) & ~1
        x = ((index % BAR_PERIOD_FRAMES) * (w - bar_w) // (BAR_PERIOD_FRAMES - 1)) & ~1
        y = h - bar_h
        luma, u, v = _planes(planes, w, h)
        luma[y:h, x : x + bar_w] = 16  # black
        u[y // 2 :, x // 2 : (x + bar_w) // 2] = 128
        v[y // 2 :, x // 2 : (x + bar_w) // 2] = 128

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self._index
        self._index += 1
        await self.clock.wait_until(index / self.fps)
        return self.frame_at(index)


def _planes(flat: _Array, width: int, height: int) -> tuple[_Array, _Array, _Array]:
    """Views of the Y, U and V planes of a flat yuv420p buffer."""
    size = width * height
    luma = flat[:size].reshape(height, width)
    u = flat[size : size + size // 4].reshape(height // 2, width // 2)
    v = flat[size + size // 4 :].reshape(height // 2, width // 2)
    return luma, u, v


def _solid_yuv420(rgb: tuple[int, int, int], width: int, height: int) -> _Array:
    y, u, v = yuv(rgb)  # BT.601 limited range, what decoders assume for untagged H.264/VP8
    flat = np.empty(width * height * 3 // 2, dtype=np.uint8)
    luma, u_plane, v_plane = _planes(flat, width, height)
    luma[:] = y
    u_plane[:] = u
    v_plane[:] = v
    return flat


class ToneAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 in 20 ms frames: a sine at `frequency` from `start_s` on, silence before.

    `start_s` may be changed while the track runs (frames are generated when sent), e.g. to make a
    publisher start talking at a chosen moment.

    With `flash_every_s`, a `beep_hz` sine burst of `beep_s` is added from each instant k*flash_every_s
    (k >= 1), the same instants as `PatternVideoTrack`'s flashes. `frequency=None` sends only the beeps.
    """

    kind = "audio"

    def __init__(
        self,
        frequency: float | None = 440.0,
        *,
        amplitude: float = 0.3,
        start_s: float = 0.0,
        flash_every_s: float | None = None,
        beep_hz: float = 1000.0,
        beep_s: float = 0.1,
        clock: SignalClock | None = None,
    ) -> None:
        super().__init__()
        if frequency is not None and not 0 < frequency < AUDIO_SAMPLE_RATE / 2:
            raise ValueError(f"tone frequency must be in (0, {AUDIO_SAMPLE_RATE // 2}) Hz, not {frequency}")
        if not 0 <= amplitude <= 0.5:
            raise ValueError(f"amplitude must be in [0, 0.5], not {amplitude}")
        self.frequency = frequency
        self.amplitude = amplitude
        self.start_s = start_s
        self.flash_every_s = flash_every_s
        self.beep_hz = beep_hz
        self.beep_s = beep_s
        self.clock = clock or SignalClock()
        self._index = 0

    def samples_at(self, first: int, count: int) -> npt.NDArray[np.float64]:
        """Samples `first` .. `first + count - 1` in [-1, 1] (pure)."""
        n = np.arange(first, first + count, dtype=np.float64)
        t = n / AUDIO_SAMPLE_RATE
        out = np.zeros(count, dtype=np.float64)
        if self.frequency is not None:
            start = round(self.start_s * AUDIO_SAMPLE_RATE)
            out += np.where(n >= start, self.amplitude * np.sin(2 * np.pi * self.frequency * t), 0.0)
        if self.flash_every_s is not None and self.flash_every_s > 0:
            period = self.flash_every_s * AUDIO_SAMPLE_RATE
            k = np.floor(n / period + 1e-9)
            since = n - np.round(k * period)
            on = (k >= 1) & (since >= 0) & (since < self.beep_s * AUDIO_SAMPLE_RATE)
            out += np.where(on, self.amplitude * np.sin(2 * np.pi * self.beep_hz * since / AUDIO_SAMPLE_RATE), 0.0)
        return out

    def frame_at(self, index: int) -> av.AudioFrame:
        first = index * AUDIO_FRAME_SAMPLES
        pcm = np.clip(self.samples_at(first, AUDIO_FRAME_SAMPLES) * 32767, -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = first
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        return frame

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self._index
        self._index += 1
        await self.clock.wait_until(index * AUDIO_FRAME_SAMPLES / AUDIO_SAMPLE_RATE)
        return self.frame_at(index)


def publisher_tracks(
    color: tuple[int, int, int] | str,
    tone_hz: float | None,
    *,
    width: int = 320,
    height: int = 180,
    fps: float = 15.0,
    tone_start_s: float = 0.0,
    amplitude: float = 0.3,
    flash_every_s: float | None = None,
) -> tuple[PatternVideoTrack, ToneAudioTrack]:
    """A camera and a microphone on one clock, as one publisher sends them."""
    clock = SignalClock()
    video = PatternVideoTrack(color, width=width, height=height, fps=fps, flash_every_s=flash_every_s, clock=clock)
    audio = ToneAudioTrack(tone_hz, amplitude=amplitude, start_s=tone_start_s, flash_every_s=flash_every_s, clock=clock)
    return video, audio


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m callrec.media.testsignals",
        description="Publish a generated camera (colour + moving bar) and microphone (sine tone) by WHIP.",
    )
    parser.add_argument("--whip-url", required=True, help="the whipUrl answered by POST /rooms/{roomId}/publish-token")
    parser.add_argument("--token", required=True, help="the publish token")
    parser.add_argument("--color", default="red", help=f"one of {', '.join(COLORS)} or #rrggbb (default red)")
    parser.add_argument("--tone", type=float, default=440.0, help="tone frequency in Hz, 0 for silence (default 440)")
    parser.add_argument("--tone-start", type=float, default=0.0, help="seconds of silence before the tone")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to publish (default 30)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--flash-every", type=float, default=None, help="white flash + 1 kHz beep every N seconds")
    parser.add_argument("--codec", choices=["VP8", "H264"], default=None, help="offer only this video codec")
    parser.add_argument("--no-video", action="store_true", help="publish audio only")
    return parser


async def _main(args: argparse.Namespace) -> int:
    def make_tracks() -> list[MediaStreamTrack]:
        video, audio = publisher_tracks(
            args.color,
            args.tone or None,
            width=args.width,
            height=args.height,
            fps=args.fps,
            tone_start_s=args.tone_start,
            flash_every_s=args.flash_every,
        )
        return [audio] if args.no_video else [video, audio]

    def on_state(state: str, detail: str) -> None:
        if state == "publishing" and detail.startswith("http"):
            print(f"publishing to {detail} (Ctrl-C ends it)", flush=True)
        elif state != "stopped" or not detail:
            print(f"{state}{': ' + detail if detail else ''}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(args.seconds, stop.set)
    print(f"publishing for {args.seconds:g} s, reconnecting whenever the session is lost", flush=True)
    try:
        connects = await publish_until(
            args.whip_url, args.token, make_tracks, stop, on_state=on_state, video_codec=args.codec
        )
    except WhipError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    print(f"done: connected {connects} time(s)", flush=True)
    return 0 if connects else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        parse_color(args.color)
        if not 16 <= args.width <= 3840 or not 16 <= args.height <= 2160 or args.width % 2 or args.height % 2:
            raise ValueError("--width/--height must be even, 16..3840 x 16..2160")
    except ValueError as exc:
        parser.error(str(exc))
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
