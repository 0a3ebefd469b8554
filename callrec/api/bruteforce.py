"""Brute-force protection for the recording-server endpoints, per client address.

The signature is checked first: a correctly signed request is never throttled, whatever its address (the
recording servers often share one behind a proxy). Only refused requests (bad checksum, replayed random)
are counted: each counts for `window_s`, and an address with `max_failures` of them in the window gets 429
(with Retry-After) for its refused requests until the oldest ages out.

The table is an LRU of at most `MAX_ADDRESSES` addresses, each with at most `max_failures` timestamps, so it
cannot grow without bound; an address pushed out by newer ones starts again from zero. The count lives in
the API process: with several API processes each keeps its own.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class Throttle:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

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
        return max(1, math.ceil(failures[0] + self.window_s - self.clock()))  # the oldest of the last max_failures

    def failed(self, address: str) -> None:
        """Counts one refused request from `address` (the most recently seen address is kept longest)."""
        failures = self._failures.get(address)
        if failures is None:
            while len(self._failures) >= self.max_addresses:
                self._failures.popitem(last=False)
            failures = self._failures[address] = deque(maxlen=self.max_failures)
        else:
            self._failures.move_to_end(address)
        failures.append(self.clock())

    def refused(self, address: str) -> int | None:
        """Counts a refused request; the seconds to send in Retry-After (answer 429) if the address was already
        blocked, else None (answer the usual 401/403)."""
        wait_s = self.retry_after(address)
        self.failed(address)
        return wait_s
