"""Object storage for recordings: a local directory or an S3/MinIO bucket.

Both implementations share the same semantics:

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
import concurrent.futures
import contextlib
import hashlib
import mimetypes
import os
import stat as stat_mod
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit
from uuid import uuid4

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.error import MinioException, S3Error
from minio.helpers import MAX_PART_SIZE, MIN_PART_SIZE
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError as Urllib3HTTPError

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "PutResult",
    "S3ObjectStore",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

MiB = 1 << 20
DEFAULT_CHUNK_SIZE = MiB
# An upload of unknown length holds about four copies of a part at once (the reader's join, and minio's
# look-ahead byte: `one_byte + data`, then `[:-1]`), so the API's memory per upload is about 4 x this.
# 8 MiB keeps it under 64 MB; 10,000 parts of 8 MiB still allow objects of 78 GiB.
DEFAULT_PART_SIZE = 8 * MiB
# Name prefix of in-progress files written next to their final location.
# Keys may not contain a segment starting with it, so listings can skip them.
_TMP_PREFIX = ".callrec-tmp-"
# An S3 upload's data goes to the uploader thread in blocks of this size (not in the HTTP server's 64 KiB
# reads, each of which would cost a round trip between the thread and the event loop), and up to one part
# of blocks waits while the previous part is sent: receiving and sending overlap.
_UPLOAD_BLOCK = MiB


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


# --------------------------------------------------------------------------- keys


def _validate_segment(segment: str, key: str, what: str = "object key") -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"invalid {what} {key!r}: empty, '.' or '..' segment")
    if segment.startswith(_TMP_PREFIX):
        raise ValueError(f"invalid {what} {key!r}: reserved segment name")


def _validate_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid object key {key!r}: absolute or contains '\\' or NUL")
    for segment in key.split("/"):
        _validate_segment(segment, key)


def _validate_prefix(prefix: str) -> None:
    """A prefix is a key whose last segment may be partial (or empty)."""
    if not isinstance(prefix, str):
        raise TypeError("prefix must be a string")
    if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
        raise ValueError(f"invalid prefix {prefix!r}: absolute or contains '\\' or NUL")
    for segment in prefix.split("/")[:-1]:
        _validate_segment(segment, prefix, "prefix")


def _validate_range(offset: int, length: int | None, chunk_size: int) -> None:
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if length is not None and length < 0:
        raise ValueError("length must be >= 0")
    if chunk_size <= 0:
        raise ValueError("chunk_size must be > 0")


# ------------------------------------------------------------------------ threads


async def _wait_quietly(fut: Awaitable[object]) -> None:
    """Wait until ``fut`` is done, ignoring its outcome and further cancellations."""
    task = asyncio.ensure_future(fut)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                return
        except BaseException:  # noqa: BLE001 - outcome deliberately ignored
            return
    if not task.cancelled():
        task.exception()  # mark retrieved


async def _in_thread(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``asyncio.to_thread`` that, when cancelled, lets the thread finish first.

    A thread cannot be interrupted, so without this a caller's cleanup (closing
    a file, releasing a connection) could run while the thread still uses it.
    """
    return await _open_in_thread(_ignore, func, *args, **kwargs)


def _ignore(_: object) -> None:
    pass


async def _open_in_thread(
    cleanup: Callable[[_T], object], func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``_in_thread`` for calls acquiring a resource: if the caller is cancelled
    while ``func`` runs, ``cleanup`` releases whatever it returned."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await _wait_quietly(task)
        if not task.cancelled() and task.exception() is None:
            with contextlib.suppress(Exception):
                cleanup(task.result())
        raise


async def _aclose(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _file_chunks(f: BinaryIO, chunk_size: int) -> AsyncGenerator[bytes, None]:
    while True:
        data = await _in_thread(f.read, chunk_size)
        if not data:
            return
        yield data


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _close_file(f: BinaryIO) -> None:
    f.close()


# -------------------------------------------------------------------------- base


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
        _validate_key(key)
        f = await _open_in_thread(_close_file, open, path, "rb")
        try:
            async with aclosing(_file_chunks(f, DEFAULT_CHUNK_SIZE)) as chunks:
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
            _unlink_quietly(tmp)

        f = await _open_in_thread(discard, open, tmp, "xb")
        try:
            chunks = self.read(key)
            try:
                async for chunk in chunks:
                    await _in_thread(f.write, chunk)
            finally:
                await _aclose(chunks)
            f.close()
            await _in_thread(os.replace, tmp, path)
        except BaseException:
            discard(f)
            raise

    async def move(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``: ``dst`` appears whole or not at all, then ``src`` is removed.

        If ``src`` is missing but ``dst`` exists (a retried move), returns
        quietly; if both are missing raises :class:`ObjectNotFound`.
        """
        _validate_key(src)
        _validate_key(dst)
        await asyncio.to_thread(self._move_blocking, src, dst)

    async def delete(self, key: str) -> None:
        """Delete ``key``; no error if it is missing."""
        _validate_key(key)
        await asyncio.to_thread(self._delete_blocking, key)

    async def list_keys(self, prefix: str) -> list[str]:
        """All keys starting with ``prefix`` (plain string prefix, recursive), sorted."""
        _validate_prefix(prefix)
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


# -------------------------------------------------------------------------- local


@dataclass
class _CommitState:
    committed: bool = False


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; ``staging/a/b.mp4`` is ``root/staging/a/b.mp4``.

    New objects are written to a temporary file in the destination directory,
    fsynced (unless ``fsync=False``) and renamed into place.  Directories left
    empty by ``delete``/``move`` are removed.
    """

    def __init__(self, root: Path, *, fsync: bool = True, write_buffer: int = MiB) -> None:
        self._root = Path(os.path.abspath(root))
        self._root.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._write_buffer = write_buffer

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        _validate_key(key)
        return self._root.joinpath(*key.split("/"))

    # -- helpers running in threads

    def _open_temp(self, directory: Path, key: str) -> tuple[BinaryIO, Path]:
        error: OSError | None = None
        for _ in range(10):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                tmp = directory / f"{_TMP_PREFIX}{uuid4().hex}"
                return open(tmp, "xb"), tmp
            except FileNotFoundError as exc:
                # A concurrent delete pruned the (empty) directory; recreate it.
                error = exc
            except OSError as exc:
                raise ObjectStoreError(f"cannot write {key!r}: {exc}") from exc
        raise ObjectStoreError(f"cannot write {key!r}: {error}") from error

    @staticmethod
    def _write(f: BinaryIO, hasher: hashlib._Hash, pieces: list[bytes], key: str) -> None:
        try:
            f.writelines(pieces)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {key!r}: {exc}") from exc
        for piece in pieces:
            hasher.update(piece)

    def _commit(self, f: BinaryIO, tmp: Path, path: Path, state: _CommitState, key: str) -> None:
        try:
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
            f.close()
            os.replace(tmp, path)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write {key!r}: {exc}") from exc
        state.committed = True
        if self._fsync:
            _fsync_dir(path.parent)

    def _prune_dirs(self, directory: Path) -> None:
        """Remove empty directories from ``directory`` up to (excluding) the root."""
        while directory != self._root and self._root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _stat_file(self, path: Path, key: str) -> os.stat_result | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ObjectStoreError(f"cannot stat {key!r}: {exc}") from exc
        return st if stat_mod.S_ISREG(st.st_mode) else None

    def _open_read(self, path: Path, key: str, offset: int) -> BinaryIO:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {key!r}: {exc}") from exc
        try:
            if not stat_mod.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ObjectNotFound(key)
            f.seek(offset)
        except BaseException:
            f.close()
            raise
        return f

    @staticmethod
    def _read_chunk(f: BinaryIO, n: int, key: str) -> bytes:
        try:
            return f.read(n)
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {key!r}: {exc}") from exc

    def _move_blocking(self, src: str, dst: str) -> None:
        src_path, dst_path = self._path(src), self._path(dst)
        if self._stat_file(src_path, src) is None:
            if self._stat_file(dst_path, dst) is not None:
                return  # already moved
            raise ObjectNotFound(src)
        if src_path == dst_path:
            return
        error: OSError | None = None
        for _ in range(10):
            try:
                dst_path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src_path, dst_path)
                break
            except FileNotFoundError as exc:
                if self._stat_file(src_path, src) is None:
                    if self._stat_file(dst_path, dst) is not None:
                        return  # a concurrent move won
                    raise ObjectNotFound(src) from exc
                error = exc  # dst directory pruned concurrently; retry
            except OSError as exc:
                raise ObjectStoreError(f"cannot move {src!r} to {dst!r}: {exc}") from exc
        else:
            raise ObjectStoreError(f"cannot move {src!r} to {dst!r}: {error}") from error
        if self._fsync:
            _fsync_dir(dst_path.parent)
        self._prune_dirs(src_path.parent)

    def _delete_blocking(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise ObjectStoreError(f"cannot delete {key!r}: {exc}") from exc
        self._prune_dirs(path.parent)

    async def sweep_unfinished(self, older_than_s: float) -> list[str]:
        return await asyncio.to_thread(self._sweep_blocking, older_than_s)

    def _sweep_blocking(self, older_than_s: float) -> list[str]:
        """Temporary files of writes that never committed (their writer died), as paths under the root."""
        horizon = time.time() - older_than_s
        removed: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for name in filenames:
                path = Path(dirpath) / name
                if not name.startswith(_TMP_PREFIX):
                    continue
                try:
                    if path.stat().st_mtime < horizon:
                        path.unlink()
                        removed.append(path.relative_to(self._root).as_posix())
                except FileNotFoundError:
                    continue  # committed or removed meanwhile
        for path in {Path(self._root, r).parent for r in removed}:
            self._prune_dirs(path)
        return sorted(removed)

    def _list_blocking(self, prefix: str) -> list[str]:
        base = prefix.rpartition("/")[0]
        start = self._root.joinpath(*base.split("/")) if base else self._root
        keys: list[str] = []

        def on_error(exc: OSError) -> None:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise ObjectStoreError(f"cannot list {prefix!r}: {exc}") from exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=on_error):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_PREFIX)]
            rel = os.path.relpath(dirpath, self._root)
            rel_prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = rel_prefix + name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    # -- API

    async def check(self) -> None:
        def probe() -> None:
            if not self._root.is_dir() or not os.access(self._root, os.W_OK | os.X_OK):
                raise ObjectStoreError(f"storage directory {self._root} is missing or not writable")

        await asyncio.to_thread(probe)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> PutResult:
        path = self._path(key)

        def discard(opened: tuple[BinaryIO, Path]) -> None:
            opened[0].close()
            _unlink_quietly(opened[1])

        f, tmp = await _open_in_thread(discard, self._open_temp, path.parent, key)
        state = _CommitState()
        hasher = hashlib.sha256()
        size = 0
        # One write (and hash) runs in a thread while the next buffer's worth of chunks arrives: the source is not
        # held up by the disk. The chunks are written as they came, without copying them into one buffer.
        writing: asyncio.Future[None] | None = None
        try:
            pieces: list[bytes] = []
            gathered = 0
            async for chunk in chunks:
                pieces.append(chunk)
                gathered += len(chunk)
                if gathered < self._write_buffer:
                    continue
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(_in_thread(self._write, f, hasher, pieces, key))
                size += gathered
                pieces, gathered = [], 0
            if writing is not None:
                await writing
            if pieces:
                await _in_thread(self._write, f, hasher, pieces, key)
                size += gathered
            await _in_thread(self._commit, f, tmp, path, state, key)
        except BaseException:
            if writing is not None:
                await _wait_quietly(writing)  # the thread must be done with `f` before it closes
            f.close()
            if state.committed:
                # Cancelled after the rename: a failed put must not leave an object.
                _unlink_quietly(path)
            else:
                _unlink_quietly(tmp)
            raise
        return PutResult(size=size, sha256=hasher.hexdigest())

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        st = await asyncio.to_thread(self._stat_file, path, key)
        if st is None:
            raise ObjectNotFound(key)
        return ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        _validate_range(offset, length, chunk_size)
        path = self._path(key)
        f = await _open_in_thread(_close_file, self._open_read, path, key, offset)
        try:
            remaining = sys.maxsize if length is None else length
            while remaining > 0:
                data = await _in_thread(self._read_chunk, f, min(chunk_size, remaining), key)
                if not data:
                    return
                remaining -= len(data)
                yield data
        finally:
            f.close()

    def read_blocking(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _validate_range(0, None, chunk_size)
        with self._open_read(self._path(key), key, 0) as f:
            while data := self._read_chunk(f, chunk_size, key):
                yield data


# ----------------------------------------------------------------------------- S3


@contextlib.contextmanager
def _s3_errors(action: str, key: str) -> Iterator[None]:
    """Translate minio/urllib3 failures into this module's exceptions."""
    try:
        yield
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise ObjectNotFound(key) from exc
        raise ObjectStoreError(f"{action} {key!r}: {exc.code}: {exc.message}") from exc
    except (MinioException, Urllib3HTTPError, OSError) as exc:
        raise ObjectStoreError(f"{action} {key!r}: {type(exc).__name__}: {exc}") from exc


def _release(response: BaseHTTPResponse | None) -> None:
    if response is not None:
        response.close()
        response.release_conn()


class _StreamAborted(Exception):
    """Raised inside minio's upload loop to make it abort the multipart upload."""


_QueueItem = bytes | BaseException | None  # data, abort, EOF


class _QueueReader:
    """A blocking ``read(n)`` (what minio consumes) fed from an asyncio queue.

    Runs in the uploader thread; each ``get`` is executed on the event loop.
    ``read(n)`` returns exactly ``n`` bytes unless EOF is reached, so minio
    assembles each part with a single copy.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_QueueItem]) -> None:
        self._loop = loop
        self._queue = queue
        self._pending = memoryview(b"")
        self._eof = False
        self._hasher = hashlib.sha256()
        self.size = 0

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def _next_item(self) -> _QueueItem:
        fut = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop)
        while True:
            try:
                return fut.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if not self._loop.is_running():  # nobody will ever feed us
                    fut.cancel()
                    raise _StreamAborted("event loop stopped") from None

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
                    raise _StreamAborted("source stream failed or was cancelled") from item
                self._pending = memoryview(item)
            take = self._pending[: want - got]
            pieces.append(take)
            got += len(take)
            self._pending = self._pending[len(take) :]
        data = b"".join(pieces)
        self._hasher.update(data)
        self.size += len(data)
        return data


async def _pump(chunks: AsyncIterator[bytes], queue: asyncio.Queue[_QueueItem]) -> None:
    pieces: list[bytes] = []
    gathered = 0
    try:
        async for chunk in chunks:
            pieces.append(chunk)
            gathered += len(chunk)
            if gathered >= _UPLOAD_BLOCK:
                await queue.put(b"".join(pieces))  # one copy into the block
                pieces, gathered = [], 0
        if gathered:
            await queue.put(b"".join(pieces))
    except Exception as exc:
        await queue.put(exc)
        raise
    await queue.put(None)


def _abort_queue(queue: asyncio.Queue[_QueueItem], reason: BaseException) -> None:
    """Make the reader fail on its next ``get`` (call on the loop thread)."""
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            break
    queue.put_nowait(reason)


def _parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"S3 endpoint must not have a path: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket via the (thread-safe, synchronous) minio client.

    Keyword tuning: ``part_size`` of multipart uploads (5 MiB..5 GiB);
    ``max_copy_size``: objects above it are moved with a multipart server-side
    copy (``compose_object``) instead of ``CopyObject``, whose limit is 5 GiB;
    HTTP ``connect_timeout``/``read_timeout`` in seconds, ``max_retries`` for
    connection errors and 5xx responses, and ``max_connections`` in the pool.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_copy_size: int = MAX_PART_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        max_retries: int = 3,
        max_connections: int = 32,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if not 0 <= max_copy_size <= MAX_PART_SIZE:
            raise ValueError(f"max_copy_size must be between 0 and {MAX_PART_SIZE}")
        host, secure = _parse_endpoint(endpoint, secure)
        http = urllib3.PoolManager(
            maxsize=max_connections,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=max_retries,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
            ),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        # Uploads hold a thread for their whole duration while waiting for
        # chunks; a dedicated pool keeps them from exhausting the default
        # executor that chunk sources (e.g. file reads) themselves need.
        self._upload_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_connections, thread_name_prefix="s3-upload"
        )
        self._bucket = bucket
        self._region = region
        self._part_size = part_size
        self._max_copy_size = max_copy_size

    @property
    def bucket(self) -> str:
        return self._bucket

    # -- helpers running in threads

    def _exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self._bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return False
            raise
        return True

    def _ensure_bucket_blocking(self) -> None:
        with _s3_errors("create bucket", self._bucket):
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket, location=self._region)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
                if not self._client.bucket_exists(self._bucket):
                    raise

    def _check_blocking(self) -> None:
        with _s3_errors("check bucket", self._bucket):
            exists = self._client.bucket_exists(self._bucket)
        if not exists:
            raise ObjectStoreError(f"bucket {self._bucket!r} does not exist")

    def _put_blocking(self, key: str, reader: _QueueReader) -> None:
        with _s3_errors("put", key):
            self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, reader),
                length=-1,
                content_type=mimetypes.guess_type(key)[0] or "application/octet-stream",
                part_size=self._part_size,
                # Sequential parts: bounded memory, and a failure aborts the
                # multipart upload without leaving minio's worker threads behind.
                num_parallel_uploads=1,
            )

    def _delete_blocking(self, key: str) -> None:
        with _s3_errors("delete", key):
            self._client.remove_object(self._bucket, key)

    def _stat_blocking(self, key: str) -> ObjectInfo:
        with _s3_errors("stat", key):
            st = self._client.stat_object(self._bucket, key)
        modified = st.last_modified.timestamp() if st.last_modified is not None else None
        return ObjectInfo(key=key, size=st.size or 0, modified=modified)

    def _get_blocking(self, key: str, offset: int, length: int | None) -> BaseHTTPResponse | None:
        """Open a (ranged) GET; ``None`` if the range starts past the end."""
        with _s3_errors("read", key):
            try:
                return self._client.get_object(self._bucket, key, offset=offset, length=length or 0)
            except S3Error as exc:
                if exc.code == "InvalidRange":  # offset >= size (or an empty object)
                    return None
                raise

    @staticmethod
    def _read_chunk(response: BaseHTTPResponse, n: int, key: str) -> bytes:
        with _s3_errors("read", key):
            return response.read(n)

    def _move_blocking(self, src: str, dst: str) -> None:
        with _s3_errors("move", src):
            try:
                st = self._client.stat_object(self._bucket, src)
            except S3Error as exc:
                if exc.code != "NoSuchKey":
                    raise
                if src != dst and self._exists(dst):
                    return  # already moved
                raise ObjectNotFound(src) from exc
            if src == dst:
                return
            if (st.size or 0) > self._max_copy_size:
                # offset=0 makes minio always use UploadPartCopy (in <= 5 GiB parts).
                self._client.compose_object(self._bucket, dst, [ComposeSource(self._bucket, src, offset=0)])
            else:
                self._client.copy_object(self._bucket, dst, CopySource(self._bucket, src))
            self._client.remove_object(self._bucket, src)

    def _list_blocking(self, prefix: str) -> list[str]:
        with _s3_errors("list", prefix):
            keys = [
                obj.object_name
                for obj in self._client.list_objects(self._bucket, prefix=prefix or None, recursive=True)
                if obj.object_name and not obj.is_dir
            ]
        keys.sort()
        return keys

    # -- API

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A URL that GETs ``key`` straight from the bucket, without credentials, until it expires."""
        _validate_key(key)
        return self._client.presigned_get_object(self._bucket, key, expires=timedelta(seconds=expires_s))

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        await asyncio.to_thread(self._ensure_bucket_blocking)

    async def check(self) -> None:
        await asyncio.to_thread(self._check_blocking)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> PutResult:
        _validate_key(key)
        queue: asyncio.Queue[_QueueItem] = asyncio.Queue(maxsize=max(1, self._part_size // _UPLOAD_BLOCK))
        loop = asyncio.get_running_loop()
        reader = _QueueReader(loop, queue)
        pump = asyncio.create_task(_pump(chunks, queue))
        upload = loop.run_in_executor(self._upload_executor, self._put_blocking, key, reader)
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            pump.cancel()
            _abort_queue(queue, asyncio.CancelledError())
            await _wait_quietly(pump)
            await _wait_quietly(upload)
            if upload.done() and not upload.cancelled() and upload.exception() is None:
                # The upload completed before it saw the abort: undo it.
                with contextlib.suppress(ObjectStoreError):
                    await _in_thread(self._delete_blocking, key)
            raise
        except BaseException:
            source_error = pump.exception() if pump.done() and not pump.cancelled() else None
            if source_error is None:
                pump.cancel()
                await _wait_quietly(pump)
                raise
        else:
            await pump
            return PutResult(size=reader.size, sha256=reader.hexdigest())
        # The caller's iterator failed and minio aborted the upload. Re-raise the
        # original error outside the except block so its chaining is untouched.
        raise source_error

    async def stat(self, key: str) -> ObjectInfo:
        _validate_key(key)
        return await asyncio.to_thread(self._stat_blocking, key)

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        _validate_key(key)
        _validate_range(offset, length, chunk_size)
        if length == 0:
            await self.stat(key)  # still report a missing key
            return
        response = await _open_in_thread(_release, self._get_blocking, key, offset, length)
        if response is None:
            return
        try:
            while True:
                data = await _in_thread(self._read_chunk, response, chunk_size, key)
                if not data:
                    return
                yield data
        finally:
            _release(response)

    def read_blocking(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _validate_key(key)
        _validate_range(0, None, chunk_size)
        response = self._get_blocking(key, 0, None)
        if response is None:  # an empty object
            return
        try:
            while data := self._read_chunk(response, chunk_size, key):
                yield data
        finally:
            _release(response)
