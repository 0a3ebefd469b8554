"""The object store interface for recordings (a local directory or an S3/MinIO bucket), its errors and types.

Every implementation shares the same semantics:

* Keys are ``/``-separated relative paths (``staging/<recordingId>/<uuid>.mp4``).
  Empty keys, absolute keys, backslashes and empty/``.``/``..`` segments are
  rejected with :class:`ValueError` by every method taking a key.
* Writes are all-or-nothing: a key never exposes a half-written object, and a
  failed or cancelled ``put_stream`` leaves nothing at its key.
* Reads stream in bounded chunks; a byte range past the end of the object is
  clipped (an offset at or beyond the end yields nothing).
* A missing key raises :class:`ObjectNotFound`; any other failure of the store
  raises :class:`ObjectStoreError`.  Exceptions raised by the caller's chunk
  iterator propagate unchanged.

Blocking work (file I/O, the synchronous ``minio`` client) runs in worker
threads.  When a coroutine is cancelled while such a thread is running, it
waits for the thread to finish before cleaning up, so cleanup never races with
an in-flight write or read.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from uuid import uuid4

from callrec.storage.objects.keys import validate_key, validate_prefix
from callrec.storage.objects.threads import (
    aclose_iterator,
    close_file,
    file_chunks,
    in_thread,
    open_in_thread,
    unlink_quietly,
)

MiB = 1 << 20
DEFAULT_CHUNK_SIZE = MiB


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float | None = None  # last written, seconds since the epoch (None: the store does not say)


@dataclass(frozen=True)
class PutResult:
    size: int
    sha256: str  # lowercase hex of the bytes written


class ObjectStoreError(Exception):
    """The store is unreachable or failed unexpectedly."""


class ObjectNotFound(ObjectStoreError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"object not found: {self.key}"


class ObjectStore(abc.ABC):
    """Async object store; see the module docstring for the shared semantics."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise :class:`ObjectStoreError` if the store is unavailable. Cheap."""

    @abc.abstractmethod
    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> PutResult:
        """Write an object of unknown length from ``chunks`` with bounded memory.

        On any error (including ``chunks`` raising, which propagates unchanged)
        or cancellation, nothing is left at ``key``.
        """

    async def put_file(self, key: str, path: Path) -> PutResult:
        validate_key(key)
        f = await open_in_thread(close_file, open, path, "rb")
        try:
            async with aclosing(file_chunks(f, DEFAULT_CHUNK_SIZE)) as chunks:
                return await self.put_stream(key, chunks)
        finally:
            f.close()

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Size (and last write time) of ``key``; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Yield bytes ``[offset, offset+length)`` (clipped to the object) in chunks
        of at most ``chunk_size``.

        Raises :class:`ObjectNotFound` before yielding anything if ``key`` is
        missing.  The result is an async generator: ``aclose()`` it (or use
        ``contextlib.aclosing``) when stopping early to release resources promptly.
        """

    @abc.abstractmethod
    def read_blocking(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The whole of ``key`` in chunks of at most ``chunk_size``, with blocking I/O: for code that already
        runs in a worker thread (the ZIP writer), so that no chunk makes a round trip through the event loop.

        Raises :class:`ObjectNotFound` on the first ``next`` if ``key`` is missing. A generator: ``close()``
        it when stopping early.
        """

    async def download(self, key: str, path: Path) -> None:
        """Stream ``key`` to ``path`` (parents created); ``path`` appears whole or not at all."""
        path = Path(path)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid4().hex}.part")

        def discard(f: BinaryIO) -> None:
            f.close()
            unlink_quietly(tmp)

        f = await open_in_thread(discard, open, tmp, "xb")
        try:
            chunks = self.read(key)
            try:
                async for chunk in chunks:
                    await in_thread(f.write, chunk)
            finally:
                await aclose_iterator(chunks)
            f.close()
            await in_thread(os.replace, tmp, path)
        except BaseException:
            discard(f)
            raise

    async def move(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``: ``dst`` appears whole or not at all, then ``src`` is removed.

        If ``src`` is missing but ``dst`` exists (a retried move), returns
        quietly; if both are missing raises :class:`ObjectNotFound`.
        """
        validate_key(src)
        validate_key(dst)
        await asyncio.to_thread(self._move_blocking, src, dst)

    async def delete(self, key: str) -> None:
        """Delete ``key``; no error if it is missing."""
        validate_key(key)
        await asyncio.to_thread(self._delete_blocking, key)

    async def list_keys(self, prefix: str) -> list[str]:
        """All keys starting with ``prefix`` (plain string prefix, recursive), sorted."""
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list_blocking, prefix)

    async def sweep_unfinished(self, older_than_s: float) -> list[str]:
        """Removes what writes cut short (a killed process) left behind, untouched for ``older_than_s``.

        Returns what was removed. S3 keeps nothing visible of an unfinished upload: its parts are dropped
        by the server (MinIO after 24 h by default; on AWS, a bucket lifecycle rule
        AbortIncompleteMultipartUpload), so there is nothing to do here.
        """
        return []

    @abc.abstractmethod
    def _move_blocking(self, src: str, dst: str) -> None: ...

    @abc.abstractmethod
    def _delete_blocking(self, key: str) -> None: ...

    @abc.abstractmethod
    def _list_blocking(self, prefix: str) -> list[str]: ...
