"""What the built-in recorder checks before it acts on a request of the recording-server protocol.

- `Backends`: the back-end URLs it may call back and upload to. The `Talk-Recording-Backend` header of a
  request is not covered by the checksum, so it can only pick one of them (compared as scheme, host, port
  and path without a trailing slash), never add one; the configured spelling is the one used.
- `ReplayGuard`: each accepted `Talk-Recording-Random` once, within a window and up to a number of entries.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
UrlKey = tuple[str, str, int, str]


def url_key(url: str) -> UrlKey | None:
    """(scheme, host, port, path without trailing slash), or None unless a plain http(s) URL (no user, query
    or fragment)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme], parts.path.rstrip("/")


class Refused(Exception):
    """A request the recorder does not act on: answered `status` with `{"error", "message"}`."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


class Backends:
    """The allow-list of back ends; the first is used when a request names none."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.by_key: dict[UrlKey, str] = {}
        for url in urls:
            key = url_key(url)
            if key is None:
                raise ValueError(f"{url!r} is not an http(s) URL without user, query or fragment")
            self.by_key.setdefault(key, url.strip().rstrip("/"))
        if not self.by_key:
            raise ValueError("no back-end URL is configured")
        self.default = next(iter(self.by_key.values()))

    def pick(self, named: str | None) -> str:
        """The configured URL the header names (the default when it names none); `Refused` 403 otherwise."""
        if not named:
            return self.default
        found = self.by_key.get(key) if (key := url_key(named)) is not None else None
        if found is None:
            raise Refused(
                403,
                "backend",
                f"Talk-Recording-Backend {named[:200]!r} is not one of this recorder's back ends "
                "(CALLREC_RECORDER_BACKENDS)",
            )
        return found


class ReplayGuard:
    """Remembers the randoms of accepted requests for `window_s`, at most `max_entries` (oldest forgotten first)."""

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.seen: OrderedDict[bytes, float] = OrderedDict()  # digest -> when, oldest first

    def first_use(self, random: str) -> bool:
        """True the first time `random` is seen (and remembers it); False for a repeat."""
        now = time.monotonic()
        while self.seen and next(iter(self.seen.values())) <= now - self.window_s:
            self.seen.popitem(last=False)
        digest = hashlib.sha256(random.encode()).digest()
        if digest in self.seen:
            return False
        self.seen[digest] = now
        while len(self.seen) > self.max_entries:
            self.seen.popitem(last=False)
        return True
