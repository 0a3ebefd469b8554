"""Concurrent recorder uploads to `/store`, a third refused mid-body (bounded, loopback only).

50 signed uploads of 20 MB at once (QUICK: 24 of 10 MB), each to its own recording that waits for its file,
with `CALLREC_MAX_UPLOAD_BYTES` lowered to 20 MB + 4 MB. A third send an MP4 that would grow to twice the
size and are refused (`size`) mid-body once they pass the cap; the rest fit and are stored. Every client
is a raw HTTP/1.1 client that reads the answer while it is still sending (as a careful recording server
would), so the time from the refusing byte to the answer is what the API does, not how long the client
takes to notice.

Figures: the slowest refused client's wait for its 4xx after it crossed the cap (target <= 1 s), the API
process's RSS growth over the whole run (<= 64 MB), and the staging objects left behind once every upload
is answered (0). The API and the worker run as their own processes (bench.media's ApiStack) on a local
directory store.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import MB, BenchResult, PeakRss, Temporal, percentile

CONCURRENT, EACH = 50, 20 * MB
QUICK_CONCURRENT, QUICK_EACH = 24, 10 * MB
PIECE = 64 * 1024
SEND_BUFFER = 256 * 1024  # the client's socket send buffer: a client reading its answer keeps little in flight
LATENCY_TARGET_S = 1.0
RSS_LIMIT_MB = 64.0


@dataclass
class RawAnswer:
    """What a raw HTTP/1.1 client saw: the answer, and how far it had got sending its body when it arrived."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes written when the answer arrived
    finished_sending: bool  # the whole body went out before the answer came
    answered_at: float  # time.monotonic()


async def raw_post(
    port: int,
    path: str,
    headers: dict[str, str],
    body: AsyncIterator[bytes],
    *,
    chunked: bool = True,
    send_buffer: int = SEND_BUFFER,
) -> RawAnswer:
    """POSTs `body` to 127.0.0.1:`port` while reading the answer at the same time; stops sending once answered.

    `chunked`: Transfer-Encoding chunked (no Content-Length); else `headers` must carry Content-Length.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)  # what this client keeps in flight itself
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    progress = {"sent": 0, "done": 0}

    async def pump() -> None:
        try:
            async for piece in body:
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                await writer.drain()
                progress["sent"] += len(piece)
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            progress["done"] = 1
        except OSError:  # the server closed the connection after answering
            pass

    sending = asyncio.create_task(pump())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        answered_at, sent, done = time.monotonic(), progress["sent"], bool(progress["done"])
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        found = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        content = await reader.readexactly(int(found.get("content-length", "0")))
        return RawAnswer(int(status_line.split()[1]), found, content, sent, done, answered_at)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


def multipart(boundary: str, fields: dict[str, str], filename: str) -> tuple[bytes, bytes]:
    """The bytes before and after the file's content in a multipart/form-data body."""
    part = '--{}\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
    pre = "".join(part.format(boundary, k, v) for k, v in fields.items())
    pre += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
    pre += "Content-Type: video/mp4\r\n\r\n"
    return pre.encode(), f"\r\n--{boundary}--\r\n".encode()


async def upload_body(pre: bytes, size: int, post: bytes, delay_s: float = 0.0) -> AsyncIterator[bytes]:
    """`pre`, then `size` bytes of an MP4 (its head, then filler) in PIECE-sized pieces, then `post`."""
    from bench.media import MP4_HEAD, payload

    yield pre
    async for chunk in payload(size, chunk=PIECE, head=MP4_HEAD):
        yield chunk
        if delay_s:
            await asyncio.sleep(delay_s)
    yield post


@dataclass
class Outcome:
    refused_expected: bool
    answer: RawAnswer
    crossed_at: float | None  # when the client had sent the byte that put it over the cap


async def one_upload(stack: object, room: str, recording_id: str, size: int, cap: int) -> Outcome:
    from bench.media import SECRET, ApiStack
    from callrec.domain import signing

    assert isinstance(stack, ApiStack)
    boundary = f"bench{uuid.uuid4().hex}"
    pre, post = multipart(boundary, {"owner": "api-key", "recordingId": recording_id}, "call.mp4")
    crossed: list[float] = []

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        async for piece in upload_body(pre, size, post):
            yield piece
            sent += len(piece)
            if sent > cap and not crossed:
                crossed.append(time.monotonic())  # this piece was written (drain returned) before the next is asked

    headers = signing.signed_headers(SECRET, room.encode()) | {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }
    port = int(stack.base.rsplit(":", 1)[1])
    answer = await raw_post(port, f"/ocs/v2.php/apps/spreed/api/v1/recording/{room}/store", headers, body())
    return Outcome(size > cap, answer, crossed[0] if crossed else None)


async def run(quick: bool, workdir: Path) -> list[BenchResult]:
    from bench.media import ApiStack, FakeRecorder, recording_to_upload

    count, each = (QUICK_CONCURRENT, QUICK_EACH) if quick else (CONCURRENT, EACH)
    cap = each + 4 * MB  # the refused third would send 2 x each: refused mid-body
    temporal = Temporal(workdir / "temporal")
    recorder = FakeRecorder()
    stack = ApiStack("local", workdir / "local", temporal.address, recorder.port, None)
    stack.env |= {"CALLREC_MAX_UPLOAD_BYTES": str(cap), "CALLREC_MAX_CONCURRENT_UPLOADS": str(count + 8)}
    try:
        await temporal.ready()
        await recorder.start()
        await stack.start()
        print(f"  {count} recordings waiting for their files ...", flush=True)
        targets = [await recording_to_upload(stack, recorder) for _ in range(count)]
        sizes = [2 * each if i % 3 == 2 else each for i in range(count)]  # every third over the cap
        over = sum(size > cap for size in sizes)
        print(f"  {count} concurrent uploads of {each // MB} MB, {over} growing past the cap ...", flush=True)
        started = time.monotonic()
        with PeakRss(stack.api.pid) as rss:
            outcomes = await asyncio.gather(
                *(one_upload(stack, room, rid, size, cap) for (room, rid), size in zip(targets, sizes, strict=True))
            )
        elapsed = time.monotonic() - started
        staged = await stack.store.list_keys("staging/")
        for _ in range(100):  # the accepted ones are moved out of staging by their workflows
            if not (staged := await stack.store.list_keys("staging/")):
                break
            await asyncio.sleep(0.2)
    finally:
        await stack.close()
        await recorder.close()
        temporal.stop()

    refused = [o for o in outcomes if o.refused_expected]
    accepted = [o for o in outcomes if not o.refused_expected]
    wrong = [o.answer.status for o in refused if o.answer.status != 400 or o.answer.finished_sending]
    wrong += [o.answer.status for o in accepted if o.answer.status != 200]
    waits = [o.answer.answered_at - o.crossed_at for o in refused if o.crossed_at is not None]
    waits += [float("inf") for o in refused if o.crossed_at is None]
    slowest = max(waits) if waits else float("inf")
    median_wait = f"{percentile(waits, 50):.2f}" if waits else "-"
    in_flight = [(o.answer.sent - cap) / MB for o in refused]
    sent = sum(o.answer.sent for o in outcomes) / MB
    note = (
        f"{count} uploads at once, {len(refused)} refused past the cap ({cap // MB} MB), median wait {median_wait} s: "
        f"{sum(o.answer.status == 400 for o in refused)} answered 400 before they finished sending, "
        f"{sum(o.answer.status == 200 for o in accepted)}/{len(accepted)} others stored; unexpected {wrong or 'none'}; "
        f"{sent:.0f} MB in {elapsed:.1f} s ({sent / elapsed:.0f} MB/s for all, {os.cpu_count()} cores); a refused "
        f"client had sent {percentile(in_flight, 50):.1f} MB (max {max(in_flight):.1f}) past the cap when answered: "
        "the bytes in the sockets' buffers the API reads before the one over the cap"
    )
    results = [
        BenchResult(
            "upload_refusal_latency_max",
            slowest,
            None,
            "s",
            "lower",
            f"<= {LATENCY_TARGET_S:g} s",
            note,
            met=slowest <= LATENCY_TARGET_S and not wrong,
        ),
        BenchResult(
            "upload_concurrent_rss_mb",
            rss.growth_mb,
            None,
            "MB",
            "lower",
            f"<= {RSS_LIMIT_MB:g} MB",
            f"API process RSS growth during {count} concurrent uploads",
        ),
        BenchResult(
            "upload_staging_left",
            float(len(staged)),
            None,
            "objects",
            "lower",
            "<= 0 objects",
            "staging/ keys left once every upload was answered and the stored ones were moved",
        ),
    ]
    for r in results:
        print(f"    {r.key}: {r.ours:.2f} {r.unit}", flush=True)
    return results
