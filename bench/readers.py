"""Timing GETs of one object through several HTTP servers in the same rounds, so each figure's "ours" and its
twins see the same conditions: whole-object MB/s (rounds alternate the readers) and 64 KiB range latency
(interleaved range by range).

Two clients: the benchmarks' httpx client (keep-alive), and a plain socket reading into one 1 MiB buffer in a
thread, for whole files from servers that outrun httpx (nginx with sendfile: httpx tops out near a third of
what curl or this reader take from it on these cores).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from bench.common import MiB, Timer, mb_per_s

RANGE_BYTES = 64 * 1024


def _range(offset: int, length: int | None) -> dict[str, str]:
    if not offset and length is None:
        return {}
    return {"Range": f"bytes={offset}-{'' if length is None else offset + length - 1}"}


async def read_url(http: httpx.AsyncClient, url: str, offset: int = 0, length: int | None = None) -> int:
    """Body bytes of a GET of ``url`` (the range ``offset``..+``length`` when given), streamed and dropped."""
    received = 0
    headers = _range(offset, length)
    async with http.stream("GET", url, headers=headers) as r:
        assert r.status_code == (206 if headers else 200), r.status_code
        async for piece in r.aiter_raw():
            received += len(piece)
    return received


def _socket_get(url: str, headers: dict[str, str], buffer_size: int = MiB) -> int:
    """Body bytes of one HTTP/1.1 GET on a new connection (`Connection: close`: the body ends with it), counted
    as they arrive into one buffer of ``buffer_size``; the response must give a Content-Length (no chunk framing in
    the count)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        got = 0
        while (end := bytes(buffer[:got]).find(b"\r\n\r\n")) < 0:  # the head: one read, nearly always
            # A read may fill the whole buffer, head and body (a busy client finds over 1 MiB waiting).
            assert got < buffer_size, "no HTTP response head in the whole buffer"
            n = sock.recv_into(view[got:])
            assert n, "the connection ended before the HTTP response head"
            got += n
        head = bytes(buffer[:end])
        assert head[9:12] == (b"206" if "Range" in headers else b"200"), head
        assert b"\r\ncontent-length:" in head.lower(), f"counts only unframed bodies: {head!r}"
        received = got - end - 4
        while n := sock.recv_into(view):
            received += n
    return received


async def read_socket(
    url: str, offset: int = 0, length: int | None = None, headers: dict[str, str] | None = None
) -> int:
    """Like :func:`read_url`, with the plain socket client (a new connection each time)."""
    return await asyncio.to_thread(_socket_get, url, (headers or {}) | _range(offset, length))


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
