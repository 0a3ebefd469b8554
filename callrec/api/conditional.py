"""Conditional requests for a stored file (RFC 9110 section 13): its validators, and what its preconditions decide.

A stored recording never changes, so its validators are:
- `ETag`: strong, the file's sha256 (`"<hex>"`). A file stored without one (LiveKit's egress writes it itself) gets
  a weak tag from its size and stored time (`W/"<size>-<mtime>"`, both hex), which lets a player revalidate
  (`If-None-Match`) but never passes a strong comparison (`If-Match`, `If-Range`); no tag when the store reports
  no time either.
- `Last-Modified`: when the store wrote the file (the recording's end when the store does not say), whole seconds.

`evaluate` applies the preconditions in the order of section 13.2.2: `If-Match` (else `If-Unmodified-Since`) fails
with 412; `If-None-Match` (else `If-Modified-Since`) answers a GET or HEAD with 304; `If-Range` keeps or drops the
`Range`. A malformed date is ignored, as are `If-Modified-Since` / `If-Unmodified-Since` naming a time after `now`
(RFC: invalid); an entity-tag that does not parse matches nothing. Bad input never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Protocol

_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*')
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FIELD = 8192  # longer validator fields are ignored, never parsed (the server's header limit is the real bound)


class Headers(Protocol):
    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class Validators:
    etag: str | None  # as sent: `"..."` (strong) or `W/"..."` (weak)
    last_modified: int | None  # seconds since the epoch

    def headers(self) -> dict[str, str]:
        found = {}
        if self.etag is not None:
            found["ETag"] = self.etag
        if self.last_modified is not None:
            found["Last-Modified"] = http_date(self.last_modified)
        return found


@dataclass(frozen=True)
class Decision:
    status: int | None  # 304 or 412: answer that with no content; None: serve the file
    use_range: bool  # whether the request's `Range` is honoured (False: a failed `If-Range` asks for all of it)


def file_validators(
    sha256: str | None, size: int, stored: float | None, ended_ms: int | None = None, variant: str = ""
) -> Validators:
    """The validators of a stored file: `sha256` of the recording, the file's `size` and `stored` time (from the
    store, may be None), the recording's end (`ended_ms`, milliseconds) for a store that has no time. `variant`
    tells apart the files derived from one recording (a preview: `poster`, `thumbnails.jpg`, ...)."""
    suffix = f"-{variant}" if variant else ""
    modified = int(stored) if stored is not None else (ended_ms // 1000 if ended_ms is not None else None)
    if sha256 is not None and _SHA256.fullmatch(sha256):
        etag: str | None = f'"{sha256}{suffix}"'
    elif stored is not None:
        etag = f'W/"{size:x}-{int(stored):x}{suffix}"'
    else:
        etag = None
    return Validators(etag, modified)


def evaluate(method: str, headers: Headers, current: Validators, now: float) -> Decision:
    """What the request's preconditions decide for the file whose validators are `current` (section 13.2.2)."""
    if_match = _field(headers, "If-Match")
    if if_match is not None:
        if not _matches(if_match, current.etag, strong=True):
            return Decision(412, False)
    elif (since := _date(headers, "If-Unmodified-Since", now)) is not None and current.last_modified is not None:
        if current.last_modified > since:
            return Decision(412, False)
    safe = method in ("GET", "HEAD")
    if_none_match = _field(headers, "If-None-Match")
    if if_none_match is not None:
        if _matches(if_none_match, current.etag, strong=False):
            return Decision(304 if safe else 412, False)
    elif safe and (since := _date(headers, "If-Modified-Since", now)) is not None and current.last_modified is not None:
        if current.last_modified <= since:
            return Decision(304, False)
    return Decision(None, safe and _range_holds(headers, current))


def _range_holds(headers: Headers, current: Validators) -> bool:
    """`If-Range` (section 13.1.5): without one the `Range` counts; with one, only if it is the current strong ETag
    or exactly the `Last-Modified` date. Only meaningful with a `Range` (the caller ignores it otherwise)."""
    if_range = _field(headers, "If-Range")
    if if_range is None:
        return True
    if if_range.lstrip().startswith(('"', "W/")):
        tags = list(_entity_tags(if_range))
        return len(tags) == 1 and tags[0] is not None and _same(tags[0], current.etag, strong=True)
    given = parse_http_date(if_range)
    return given is not None and given == current.last_modified


def _field(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value[:MAX_FIELD]


def _date(headers: Headers, name: str, now: float) -> int | None:
    value = _field(headers, name)
    if value is None:
        return None
    parsed = parse_http_date(value)
    return parsed if parsed is not None and parsed <= now else None


def _matches(field: str, etag: str | None, *, strong: bool) -> bool:
    """Whether an `If-Match` / `If-None-Match` value (`*` or a list of entity-tags) matches the current tag."""
    if field.strip() == "*":
        return True  # the file exists: the caller only evaluates once it has stat'ed it
    return any(tag is not None and _same(tag, etag, strong=strong) for tag in _entity_tags(field))


def _same(given: str, current: str | None, *, strong: bool) -> bool:
    """Strong comparison: both strong and the same opaque tag; weak: the same opaque tag (section 8.8.3.2)."""
    if current is None:
        return False
    if strong and (given.startswith("W/") or current.startswith("W/")):
        return False
    return given.removeprefix("W/") == current.removeprefix("W/")


def _entity_tags(field: str) -> Iterator[str | None]:
    """The members of a comma-separated entity-tag list; None for one that is not an entity-tag."""
    for member in _split(field):
        match = _ENTITY_TAG.fullmatch(member)
        yield None if match is None else (match.group(1) or "") + match.group(2)


def _split(field: str) -> Iterator[str]:
    """Commas between members (an opaque tag cannot contain `"`, so a comma inside quotes belongs to its tag)."""
    start, quoted = 0, False
    for at, char in enumerate(field):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            if field[start:at].strip():
                yield field[start:at]
            start = at + 1
    if field[start:].strip():
        yield field[start:]


def parse_http_date(value: str) -> int | None:
    """An HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms) as seconds since the epoch; None when it
    is not one (including a list of several)."""
    if value.count(",") > 1 or len(value) > 64:  # a list of dates, or not a date at all
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return int(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def http_date(seconds: int) -> str:
    """IMF-fixdate, as `Last-Modified` carries it."""
    return format_datetime(datetime.fromtimestamp(seconds, UTC), usegmt=True)
