"""Brute-force protection for the recording-server endpoints, per client address.

Each bad checksum counts for `window_s`; an address with `max_failures` of them in the window gets 429
(with Retry-After) until the oldest ages out. Good requests from other addresses are not affected.
The count lives in the API process: with several API processes each keeps its own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class Throttle:
    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        horizon = self.clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None if it is not blocked."""
        failures = self._recent(address)
        if len(failures) < self.max_failures:
            return None
        oldest_that_blocks = failures[len(failures) - self.max_failures]
        return max(1, math.ceil(oldest_that_blocks + self.window_s - self.clock()))

    def failed(self, address: str) -> None:
        if len(self._failures) >= MAX_ADDRESSES and address not in self._failures:
            for known in list(self._failures):
                self._recent(known)
        self._failures.setdefault(address, deque()).append(self.clock())
