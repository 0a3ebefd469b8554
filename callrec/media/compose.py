"""Compositing a room's live feeds into one picture per the layout, in yuv420p planes.

Each tile holds its participant's latest picture scaled to fit (aspect ratio kept, letterboxed on the
background colour) with the name drawn at the bottom-left; a participant without video gets a name tile in
their colour. The active speaker comes from audio energy over a short window, held for a while so it does
not flap. Tile pictures and name labels are cached: a tile is only rescaled when a new frame arrives or the
tile changes size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from callrec.domain.layout import Layout
from callrec.media.stage import Feed, Picture, fit_within
from callrec.media.tiles import BACKGROUND, Tile, draw_name, participant_color, tile_rects

log = logging.getLogger(__name__)

SPEAKER_WINDOW_S = 0.3  # audio energy is measured over this window
SPEAKER_HOLD_S = 1.0  # a speaker stays large at least this long
SPEAKER_SUSTAIN_S = 0.15  # a new speaker must be the clearly loudest for this long
SPEAKER_MARGIN = 2.0  # "clearly loudest": this many times the current speaker's energy
SPEECH_ENERGY = 1e-4  # mean square below this is silence (about -40 dBFS)

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Entry:
    """A participant on screen: a live feed, or a placeholder (name tile) when `feed` is None."""

    key: str
    name: str
    feed: Feed | None = None


@dataclass
class Planes:
    """A yuv420p picture as three numpy planes (even width and height)."""

    y: Plane
    u: Plane
    v: Plane

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def of(cls, frame: av.VideoFrame) -> Planes:
        """The planes of a yuv420p frame with even dimensions (copied)."""
        w, h = frame.width, frame.height
        flat = np.asarray(frame.to_ndarray(), dtype=np.uint8).reshape(-1)
        return cls(
            flat[: h * w].reshape(h, w).copy(),
            flat[h * w : h * w * 5 // 4].reshape(h // 2, w // 2).copy(),
            flat[h * w * 5 // 4 :].reshape(h // 2, w // 2).copy(),
        )

    @classmethod
    def filled(cls, width: int, height: int, colour: tuple[int, int, int]) -> Planes:
        y, u, v = yuv(colour)
        return cls(
            np.full((height, width), y, np.uint8),
            np.full((height // 2, width // 2), u, np.uint8),
            np.full((height // 2, width // 2), v, np.uint8),
        )

    def paste(self, other: Planes, x: int, y: int) -> None:
        """Copies `other` with its top-left corner at (x, y); x and y even."""
        h, w = other.height, other.width
        self.y[y : y + h, x : x + w] = other.y
        self.u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = other.u
        self.v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = other.v


def rgb_to_planes(rgb: npt.NDArray[np.uint8]) -> Planes:
    """RGB (even dimensions) to BT.601 limited-range yuv420p."""
    return Planes.of(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p"))


def yuv(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of an RGB colour."""
    r, g, b = colour
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def _even(tile: Tile) -> Tile:
    """The tile shrunk to even position and size (chroma is subsampled 2x2)."""
    x, y = tile.x + tile.x % 2, tile.y + tile.y % 2
    w = max(2, (tile.width - (x - tile.x)) // 2 * 2)
    h = max(2, (tile.height - (y - tile.y)) // 2 * 2)
    return Tile(x, y, w, h)


@dataclass(frozen=True)
class _Label:
    """A name drawn for a tile size: alpha and luma over the label's box (x0, y0 even)."""

    x0: int
    y0: int
    alpha: npt.NDArray[np.float32]  # 0..1, luma resolution
    luma: npt.NDArray[np.float32]  # limited-range Y of white text with a black outline
    chroma_alpha: npt.NDArray[np.float32]  # 0..1, chroma resolution

    def draw(self, planes: Planes, dx: int = 0, dy: int = 0) -> None:
        """Over `planes`, shifted by (dx, dy) (even: where the labelled picture sits in its tile)."""
        h, w = self.alpha.shape
        y0, x0 = self.y0 + dy, self.x0 + dx
        region = planes.y[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
        planes.y[y0 : y0 + h, x0 : x0 + w] = (region + (self.luma - region) * self.alpha).astype(np.uint8)
        ch, cw = self.chroma_alpha.shape
        for plane in (planes.u, planes.v):
            part = plane[y0 // 2 : y0 // 2 + ch, x0 // 2 : x0 // 2 + cw].astype(np.float32)
            plane[y0 // 2 : y0 // 2 + ch, x0 // 2 : x0 // 2 + cw] = (part + (128 - part) * self.chroma_alpha).astype(
                np.uint8
            )


def _picture_box(frame: av.VideoFrame, width: int, height: int) -> Tile:
    """Where a frame goes in a `width` x `height` tile: as large as fits unstretched, centred (even position)."""
    fw, fh = fit_within(frame.width, frame.height, width, height)
    return Tile((width - fw) // 4 * 2, (height - fh) // 4 * 2, fw, fh)


def _label(name: str, width: int, height: int) -> _Label | None:
    tile = Tile(0, 0, width, height)
    alpha_img = Image.new("L", (width, height), 0)
    luma_img = Image.new("L", (width, height), 0)
    if not draw_name(ImageDraw.Draw(alpha_img), tile, name, fill=255, stroke_fill=255):
        return None
    draw_name(ImageDraw.Draw(luma_img), tile, name, fill=255, stroke_fill=0)
    alpha = np.asarray(alpha_img, dtype=np.float32) / 255
    rows, cols = np.nonzero(alpha)
    if rows.size == 0:
        return None
    y0, x0 = int(rows.min()) // 2 * 2, int(cols.min()) // 2 * 2
    y1, x1 = min(height, (int(rows.max()) + 2) // 2 * 2), min(width, (int(cols.max()) + 2) // 2 * 2)
    a = np.ascontiguousarray(alpha[y0:y1, x0:x1], dtype=np.float32)
    luma = 16 + np.asarray(luma_img, dtype=np.float32)[y0:y1, x0:x1] * (219 / 255)
    chroma = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))
    return _Label(
        x0, y0, a, np.ascontiguousarray(luma, dtype=np.float32), np.ascontiguousarray(chroma, dtype=np.float32)
    )


class SpeakerTracker:
    """Who is speaking: the clearly loudest participant over a short window, held for a while."""

    def __init__(
        self,
        window_s: float = SPEAKER_WINDOW_S,
        hold_s: float = SPEAKER_HOLD_S,
        sustain_s: float = SPEAKER_SUSTAIN_S,
    ) -> None:
        self.window_s, self.hold_s, self.sustain_s = window_s, hold_s, sustain_s
        self.current: str | None = None
        self._since = float("-inf")  # when the current speaker was chosen by their voice
        self._candidate: str | None = None
        self._candidate_since = 0.0

    def update(self, t: float, entries: Sequence[Entry]) -> str | None:
        """The active speaker's key at local instant t (the first participant while nobody has spoken)."""
        keys = [e.key for e in entries]
        if self.current not in keys:
            self.current, self._since = (keys[0] if keys else None), float("-inf")
        energies = {e.key: e.feed.energy(t, self.window_s) for e in entries if e.feed is not None and e.feed.has_audio}
        loudest = max(energies, key=energies.__getitem__, default=None)
        if (
            loudest is None
            or loudest == self.current
            or energies[loudest] < SPEECH_ENERGY
            or energies[loudest] < SPEAKER_MARGIN * energies.get(self.current or "", 0.0)
        ):
            self._candidate = None
            return self.current
        if loudest != self._candidate:
            self._candidate, self._candidate_since = loudest, t
        if t - self._candidate_since >= self.sustain_s and t - self._since >= self.hold_s:
            self.current, self._since, self._candidate = loudest, t, None
        return self.current


class Compositor:
    """Draws one output picture per call of `frame(t, feeds)`; keeps the previous picture and repaints changes."""

    def __init__(
        self,
        layout: Layout,
        width: int,
        height: int,
        placeholders: Sequence[tuple[str, str]] = (),
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"yuv420p needs positive even dimensions, got {width}x{height}")
        self.layout = Layout(layout)
        self.width, self.height = width, height
        self.placeholders = list(placeholders)
        self.speaker = SpeakerTracker()
        self.canvas = Planes.filled(width, height, BACKGROUND)
        self._flat = np.empty((height * 3 // 2, width), np.uint8)
        self._painted: dict[Tile, tuple[str, int, str]] = {}  # tile -> (key, picture seq, name)
        self._held: dict[str, Picture] = {}  # last picture shown per participant: held through gaps
        self._tiles: dict[tuple[str, int, int], tuple[int, Planes]] = {}  # (key, w, h) -> (seq, tile picture)
        self._labels: dict[tuple[str, int, int], _Label | None] = {}
        self._names: dict[tuple[str, str, int, int], Planes] = {}
        self._seen_live: set[str] = set()
        self._failed: set[tuple[str, int]] = set()

    def entries(self, feeds: Sequence[Feed]) -> list[Entry]:
        """Who is on screen, in order: the placeholders (a live feed takes its placeholder's place), then the
        other live feeds in join order. A placeholder whose feed was live in this recording and left is gone."""
        live: dict[str, Feed] = {}
        for feed in feeds:
            live[feed.participant_id] = feed  # the newest feed of a participant wins
        self._seen_live.update(live)
        entries: list[Entry] = []
        placed: set[str] = set()
        for key, name in self.placeholders:
            if key in placed:
                continue
            placed.add(key)
            found = live.get(key)
            if found is not None:
                entries.append(Entry(key, found.name, found))
            elif key not in self._seen_live:
                entries.append(Entry(key, name))
        entries += [Entry(f.participant_id, f.name, f) for f in live.values() if f.participant_id not in placed]
        return entries

    def arrange(self, t: float, entries: Sequence[Entry]) -> list[tuple[Tile, Entry]]:
        """Where each participant shown at local instant t goes."""
        speaker = self.speaker.update(t, entries)
        shown = list(entries)
        if self.layout is not Layout.GRID and speaker is not None:
            first = next(e for e in entries if e.key == speaker)
            shown = (
                [first] if self.layout is Layout.SINGLE_SPEAKER else [first] + [e for e in entries if e is not first]
            )
        tiles = tile_rects(self.layout, len(shown), self.width, self.height)
        return [(_even(tile), entry) for tile, entry in zip(tiles, shown, strict=False)]

    def frame(self, t: float, feeds: Sequence[Feed]) -> av.VideoFrame:
        """The picture at local instant t: each feed's latest frame captured at or before t."""
        placed = self.arrange(t, self.entries(feeds))
        if set(self._painted) != {tile for tile, _ in placed}:
            self.canvas = Planes.filled(self.width, self.height, BACKGROUND)
            self._painted = {}
        for tile, entry in placed:
            picture = self._picture(entry, t)
            state = (entry.key, picture.seq if picture is not None else 0, entry.name)
            if self._painted.get(tile) == state:
                continue
            self.canvas.paste(self._tile(entry, picture, tile.width, tile.height), tile.x, tile.y)
            self._painted[tile] = state
        self._forget({e.key for _, e in placed}, {(tile.width, tile.height) for tile, _ in placed})
        h, w = self.height, self.width
        flat = self._flat.reshape(-1)
        flat[: h * w] = self.canvas.y.reshape(-1)
        flat[h * w : h * w * 5 // 4] = self.canvas.u.reshape(-1)
        flat[h * w * 5 // 4 :] = self.canvas.v.reshape(-1)
        return av.VideoFrame.from_ndarray(self._flat, format="yuv420p")

    def _picture(self, entry: Entry, t: float) -> Picture | None:
        if entry.feed is None:
            return None
        picture = entry.feed.picture_at(t)
        held = self._held.get(entry.key)
        if picture is None or (held is not None and held.seq > picture.seq):
            return held  # nothing captured by t (yet): hold the last picture shown
        self._held[entry.key] = picture
        return picture

    def _tile(self, entry: Entry, picture: Picture | None, width: int, height: int) -> Planes:
        if picture is not None and (entry.key, picture.seq) not in self._failed:
            cached = self._tiles.get((entry.key, width, height))
            if cached is not None and cached[0] == picture.seq:
                return cached[1]
            try:
                box = _picture_box(picture.frame, width, height)
                planes = self._video_tile(picture.frame, width, height, box)
            except Exception as exc:  # noqa: BLE001 - one unusable picture shows the name tile instead
                if not self._failed:
                    log.warning("could not scale a picture of %r: %r", entry.key, exc)
                self._failed.add((entry.key, picture.seq))
                return self._name_tile(entry, width, height)
            # the name goes on the picture, not on the bars around it (a camera in a tall strip tile)
            label = self._label(entry.name, box.width, box.height)
            if label is not None:
                label.draw(planes, box.x, box.y)
            self._tiles[(entry.key, width, height)] = (picture.seq, planes)
            return planes
        return self._name_tile(entry, width, height)

    @staticmethod
    def _video_tile(frame: av.VideoFrame, width: int, height: int, box: Tile) -> Planes:
        """The frame scaled into `box` (`_picture_box`) of a `width` x `height` tile, the rest letterboxed."""
        if (box.width, box.height) != (frame.width, frame.height) or frame.format.name != "yuv420p":
            frame = frame.reformat(width=box.width, height=box.height, format="yuv420p", interpolation="BILINEAR")
        picture = Planes.of(frame)
        if (box.width, box.height) == (width, height):
            return picture
        planes = Planes.filled(width, height, BACKGROUND)  # letterbox
        planes.paste(picture, box.x, box.y)
        return planes

    def _label(self, name: str, width: int, height: int) -> _Label | None:
        key = (name, width, height)
        if key not in self._labels:
            if len(self._labels) > 256:
                self._labels.clear()
            self._labels[key] = _label(name, width, height)
        return self._labels[key]

    def _name_tile(self, entry: Entry, width: int, height: int) -> Planes:
        key = (entry.key, entry.name, width, height)
        planes = self._names.get(key)
        if planes is None:
            image = Image.new("RGB", (width, height), participant_color(entry.key))
            draw_name(ImageDraw.Draw(image), Tile(0, 0, width, height), entry.name)
            planes = rgb_to_planes(np.asarray(image, dtype=np.uint8))
            if len(self._names) > 64:
                self._names.clear()
            self._names[key] = planes
        return planes

    def _forget(self, keys: set[str], sizes: set[tuple[int, int]]) -> None:
        """Drops cached pictures of participants no longer shown and of tile sizes no longer used."""
        for key in [k for k in self._tiles if k[0] not in keys or k[1:] not in sizes]:
            del self._tiles[key]
        for gone in [k for k in self._held if k not in keys]:
            del self._held[gone]
        if len(self._failed) > 1024:
            self._failed.clear()
