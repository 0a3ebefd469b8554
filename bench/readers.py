"""Timing GETs of one object through several HTTP servers in the same rounds, so each figure's "ours" and its
twins see the same conditions: whole-object MB/s (rounds alternate the readers) and 64 KiB range latency
(interleaved range by range).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import httpx

from bench.common import Timer, mb_per_s

RANGE_BYTES = 64 * 1024


async def read_url(http: httpx.AsyncClient, url: str, offset: int = 0, length: int | None = None) -> int:
    """Body bytes of a GET of ``url`` (the range ``offset``..+``length`` when given), streamed and dropped."""
    received = 0
    headers: dict[str, str] = {}
    if offset or length is not None:
        end = "" if length is None else str(offset + length - 1)
        headers["Range"] = f"bytes={offset}-{end}"
    async with http.stream("GET", url, headers=headers) as r:
        assert r.status_code == (206 if headers else 200), r.status_code
        async for piece in r.aiter_raw():
            received += len(piece)
    return received


# A reader GETs the seeded object, the whole of it or the range (offset, length), and returns the bytes it got.
Reader = Callable[[int, int | None], Awaitable[int]]


async def whole_rates(readers: dict[str, Reader], size: int, rounds: int) -> dict[str, list[float]]:
    """MB/s of each reader GETting the whole object, one round after another, the readers alternating in each."""
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for read in readers.values():  # warm up: connections, page cache, allocator
        await read(0, None)
    for _ in range(rounds):
        for name, read in readers.items():
            with Timer() as t:
                n = await read(0, None)
            assert n == size, (name, n)
            rates[name].append(mb_per_s(n, t.elapsed))
    return rates


async def range_times(readers: dict[str, Reader], size: int, count: int) -> dict[str, list[float]]:
    """Milliseconds of each reader GETting ``count`` random 64 KiB ranges, interleaved range by range."""
    rng = random.Random(1234)
    offsets = [rng.randrange(0, size - RANGE_BYTES) for _ in range(count)]
    times: dict[str, list[float]] = {name: [] for name in readers}
    for offset in offsets[:10]:  # warm up
        for read in readers.values():
            await read(offset, RANGE_BYTES)
    for offset in offsets:
        for name, read in readers.items():
            with Timer() as t:
                n = await read(offset, RANGE_BYTES)
            assert n == RANGE_BYTES, (name, n)
            times[name].append(t.elapsed * 1000)
    return times
