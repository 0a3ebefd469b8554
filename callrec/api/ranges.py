"""HTTP `Range: bytes=...` for media (RFC 9110 section 14): one range; anything else serves the whole file.

Positions are ASCII digits only (Unicode digit classes and `int()` also take other scripts' digits). A position longer
than `MAX_DIGITS` is beyond the end of any file: as a start it is unsatisfiable (416), as an end it is clamped
to the last byte, as a suffix it is the whole file; no position is ever converted in full (`int()` refuses
numbers of more than 4300 digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII)
MAX_DIGITS = 18  # 10**18 bytes is beyond any stored file (and any 64-bit offset)
BEYOND_ANY_FILE = 10**MAX_DIGITS


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None: serve all (no header, malformed, or several ranges). Raises RangeNotSatisfiable."""
    if not header:
        return None
    match = _SINGLE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-n: the last n bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix, 0), size - 1)
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = min(_position(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def _position(digits: str) -> int:
    """ASCII digits as a number; `BEYOND_ANY_FILE` when longer than `MAX_DIGITS` (leading zeros aside)."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= MAX_DIGITS else BEYOND_ANY_FILE
