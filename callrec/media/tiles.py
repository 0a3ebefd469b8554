"""Where participants go in a composed call picture, their colours, and their names drawn on tiles."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageDraw, ImageFont

from callrec.domain.layout import Layout

BACKGROUND: tuple[int, int, int] = (16, 16, 16)

SPEAKER_SHARE = 0.75  # fraction of the long side given to the speaker tile

Ink = int | tuple[int, int, int]


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


def draw_name(
    draw: ImageDraw.ImageDraw,
    tile: Tile,
    name: str,
    fill: Ink = (255, 255, 255),
    stroke_fill: Ink = (0, 0, 0),
) -> bool:
    """Name at the tile's bottom-left, only if it stays clear of the tile's centre; False when not drawn."""
    size = min(40, max(10, tile.height // 12))
    pad = max(2, size // 3)
    font = _font(size)
    stroke = max(1, size // 12)
    text = _fit(name, font, tile.width - 2 * pad - 2 * stroke)
    if not text:
        return False
    x = tile.x + pad
    _, top, _, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
    y = tile.y + tile.height - pad - bottom
    if y + top <= tile.y + tile.height // 2 + 2:  # tile too small to label without covering its centre
        return False
    draw.text(
        (x, y),
        text,
        font=font,
        fill=fill,
        stroke_width=stroke,
        stroke_fill=stroke_fill,
    )
    return True
