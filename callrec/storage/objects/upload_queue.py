"""An S3 upload's data path: chunks from the event loop, gathered into blocks, read by minio's uploader thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import sys
from collections.abc import AsyncIterator

from callrec.storage.objects.base import MiB

# An S3 upload's data goes to the uploader thread in blocks of this size (not in the HTTP server's 64 KiB
# reads, each of which would cost a round trip between the thread and the event loop), and up to one part
# of blocks waits while the previous part is sent: receiving and sending overlap.
UPLOAD_BLOCK = MiB


class StreamAborted(Exception):
    """Raised inside minio's upload loop to make it abort the multipart upload."""


QueueItem = bytes | BaseException | None  # data, abort, EOF


class QueueReader:
    """A blocking ``read(n)`` (what minio consumes) fed from an asyncio queue.

    Runs in the uploader thread; each ``get`` is executed on the event loop.
    ``read(n)`` returns exactly ``n`` bytes unless EOF is reached, so minio
    assembles each part with a single copy.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[QueueItem]) -> None:
        self._loop = loop
        self._queue = queue
        self._pending = memoryview(b"")
        self._eof = False
        self._hasher = hashlib.sha256()
        self.size = 0

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def _next_item(self) -> QueueItem:
        fut = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop)
        while True:
            try:
                return fut.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if not self._loop.is_running():  # nobody will ever feed us
                    fut.cancel()
                    raise StreamAborted("event loop stopped") from None

    def read(self, size: int = -1) -> bytes:
        want = sys.maxsize if size < 0 else size
        pieces: list[bytes | memoryview] = []
        got = 0
        while got < want and not self._eof:
            if not self._pending:
                item = self._next_item()
                if item is None:
                    self._eof = True
                    break
                if isinstance(item, BaseException):
                    raise StreamAborted("source stream failed or was cancelled") from item
                self._pending = memoryview(item)
            take = self._pending[: want - got]
            pieces.append(take)
            got += len(take)
            self._pending = self._pending[len(take) :]
        data = b"".join(pieces)
        self._hasher.update(data)
        self.size += len(data)
        return data


async def feed_queue(chunks: AsyncIterator[bytes], queue: asyncio.Queue[QueueItem]) -> None:
    pieces: list[bytes] = []
    gathered = 0
    try:
        async for chunk in chunks:
            pieces.append(chunk)
            gathered += len(chunk)
            if gathered >= UPLOAD_BLOCK:
                await queue.put(b"".join(pieces))  # one copy into the block
                pieces, gathered = [], 0
        if gathered:
            await queue.put(b"".join(pieces))
    except Exception as exc:
        await queue.put(exc)
        raise
    await queue.put(None)


def abort_queue(queue: asyncio.Queue[QueueItem], reason: BaseException) -> None:
    """Make the reader fail on its next ``get`` (call on the loop thread)."""
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            break
    queue.put_nowait(reason)
