"""A streaming `multipart/form-data` reader for the recorder's upload, built for one large file part.

Sans-IO: `feed()` takes the body as it arrives, in pieces of any size, and returns what they completed. The
boundary is found with `bytes.find` over each piece; a piece with no boundary in it is passed on whole, without a
copy, and only the few bytes at its end that could begin a boundary wait for the next piece. So the memory held is
a part's headers (at most `max_header_bytes`) plus one boundary's length, whatever the body's size.

Strict where a body is malformed (`MultipartError`, for the caller's 400): a part's headers over
`max_header_bytes`, a header line without a colon, a part without `Content-Disposition: form-data; name=...`, more
than `max_parts` parts, junk after a boundary, or a body that ends before its closing boundary. The preamble
before the first boundary and the epilogue after the last are read and dropped, as RFC 2046 says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from werkzeug.http import parse_options_header

MAX_HEADER_BYTES = 16 << 10
CRLF = b"\r\n"
TRANSPORT_PADDING = b" \t"


class MultipartError(ValueError):
    """The body is not a well-formed multipart body (or is over a limit)."""


@dataclass(frozen=True)
class PartStart:
    """A part begins: its form name, and its file name when it is a file (`None` for a plain field)."""

    name: str
    filename: str | None


@dataclass(frozen=True)
class PartData:
    """Bytes of the current part; `last` when they end it (they may be empty then)."""

    data: bytes
    last: bool


Event = PartStart | PartData


class _State(Enum):
    PREAMBLE = auto()
    AFTER_BOUNDARY = auto()
    HEADERS = auto()
    DATA = auto()
    EPILOGUE = auto()


class MultipartReader:
    def __init__(self, boundary: bytes, *, max_parts: int, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        if not 1 <= len(boundary) <= 200:
            raise MultipartError("bad boundary")
        # Every delimiter is CRLF "--" boundary; the first may open the body, so the body is read as if it began
        # with a CRLF (then an empty preamble is one).
        self._delimiter = CRLF + b"--" + boundary
        self._max_parts = max_parts
        self._max_header_bytes = max_header_bytes
        self._state = _State.PREAMBLE
        self._buffer = CRLF  # bytes not yet decided: at most a part's headers or a delimiter's length
        self.parts = 0

    @property
    def done(self) -> bool:
        """The closing boundary was read."""
        return self._state is _State.EPILOGUE

    def feed(self, data: bytes) -> list[Event]:
        """The events that `data` (the next bytes of the body) completes."""
        events: list[Event] = []
        if self._state is _State.EPILOGUE or not data:
            return events
        if self._state is _State.DATA and not self._buffer:
            rest = self._data(data, events)  # the common case: a piece in the middle of the file, never copied
        else:
            rest, self._buffer = self._buffer + data, b""
        while rest is not None:
            rest = self._step(rest, events)
        return events

    def close(self) -> None:
        """The body ended: it must have ended with its closing boundary."""
        if self._state is not _State.EPILOGUE:
            raise MultipartError("the body ends before its closing boundary")

    def _step(self, data: bytes, events: list[Event]) -> bytes | None:
        """Consumes what it can of `data` in the current state; the rest to go on with, or None when it keeps the
        rest (in `_buffer`) for more bytes."""
        if self._state is _State.DATA:
            return self._data(data, events)
        if self._state is _State.PREAMBLE:
            at = data.find(self._delimiter)
            if at == -1:
                self._buffer = data[-(len(self._delimiter) - 1) :]  # the preamble is dropped
                return None
            self._state = _State.AFTER_BOUNDARY
            return data[at + len(self._delimiter) :]
        if self._state is _State.AFTER_BOUNDARY:
            return self._after_boundary(data)
        if self._state is _State.HEADERS:
            return self._headers(data, events)
        return None  # the epilogue is dropped

    def _after_boundary(self, data: bytes) -> bytes | None:
        """After a delimiter: "--" closes the body; else optional padding and a CRLF open a part's headers."""
        if len(data) < 2:
            self._buffer = data
            return None
        if data.startswith(b"--"):
            self._state = _State.EPILOGUE
            return None
        end = data.find(CRLF, 0, self._max_header_bytes)
        if end == -1:
            if len(data) >= self._max_header_bytes or data.lstrip(TRANSPORT_PADDING).rstrip(b"\r"):
                raise MultipartError("junk after a boundary")
            self._buffer = data
            return None
        if data[:end].strip(TRANSPORT_PADDING):
            raise MultipartError("junk after a boundary")
        self.parts += 1
        if self.parts > self._max_parts:
            raise MultipartError("too many parts")
        self._state = _State.HEADERS
        return data[end + 2 :]

    def _headers(self, data: bytes, events: list[Event]) -> bytes | None:
        if data.startswith(CRLF):  # a part without headers
            raise MultipartError("a part without Content-Disposition")
        end = data.find(CRLF + CRLF, 0, self._max_header_bytes + 2)
        if end == -1:
            if len(data) > self._max_header_bytes:
                raise MultipartError("a part's headers are too long")
            self._buffer = data
            return None
        events.append(_part_start(data[:end]))
        self._state = _State.DATA
        return data[end + 4 :]

    def _data(self, data: bytes, events: list[Event]) -> bytes | None:
        delimiter = self._delimiter
        at = data.find(delimiter)
        if at != -1:
            events.append(PartData(data[:at], True))
            self._state = _State.AFTER_BOUNDARY
            return data[at + len(delimiter) :]
        # No delimiter: all of it is the part's, but for an end that may begin one (a CR, then a prefix of it).
        keep = len(data)
        cr = data.find(b"\r", max(0, len(data) - len(delimiter) + 1))
        while cr != -1:
            if delimiter.startswith(data[cr:]):
                keep = cr
                break
            cr = data.find(b"\r", cr + 1)
        if keep == len(data):
            events.append(PartData(data, False))
        else:
            if keep:
                events.append(PartData(data[:keep], False))
            self._buffer = data[keep:]
        return None


def _part_start(block: bytes) -> PartStart:
    """A part's headers (without the blank line ending them) as its start: name and file name."""
    disposition: str | None = None
    for line in block.split(CRLF):
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultipartError("a malformed part header")
        if name.strip().lower() == b"content-disposition":
            disposition = value.decode("utf-8", "replace").strip()
    if disposition is None:
        raise MultipartError("a part without Content-Disposition")
    kind, options = parse_options_header(disposition)
    if kind.lower() != "form-data" or "name" not in options:
        raise MultipartError("a part that is no form-data field")
    return PartStart(options["name"], options.get("filename"))
