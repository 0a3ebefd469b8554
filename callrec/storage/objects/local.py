"""`LocalObjectStore`: objects as files in a local directory, written to a temporary file and renamed into place."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat as stat_mod
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from uuid import uuid4

from callrec.storage.objects.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PutResult,
)
from callrec.storage.objects.keys import TMP_PREFIX, validate_key, validate_range
from callrec.storage.objects.threads import (
    fsync_dir,
    in_thread,
    open_in_thread,
    unlink_quietly,
    wait_quietly,
)
from callrec.storage.private import FILE_MODE, private_dirs, restrict_dir

# A read this small (a player's seek) is done in the event loop's thread when the page cache holds all of it: asking
# with RWF_NOWAIT never waits for the disk, and saves the hand-off to a thread and back (about a tenth of a 64 KiB
# range request). Otherwise, or where the file system does not offer RWF_NOWAIT, the read goes to a thread.
INLINE_READ_MAX = 256 * 1024
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


@dataclass
class _CommitState:
    committed: bool = False


# `put_stream` gathers chunks smaller than this into one write (one hand-off to a thread); larger ones are written as
# they come. Every chunk an upload holds is memory: gathering 1 MiB per write doubled the API's RSS with 50 uploads
# at once (bench/README.md, "Concurrent uploads").
WRITE_GATHER = 64 * 1024


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; ``staging/a/b.mp4`` is ``root/staging/a/b.mp4``.

    New objects are written to a temporary file in the destination directory,
    fsynced (unless ``fsync=False``) and renamed into place.  Directories left
    empty by ``delete``/``move`` are removed.
    Objects are 0600 files in 0700 directories, the root included (when this process owns it).
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self._root = Path(os.path.abspath(root))
        restrict_dir(self._root)
        self._fsync = fsync

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self._root.joinpath(*key.split("/"))

    # -- helpers running in threads

    def _open_temp(self, directory: Path, key: str) -> tuple[BinaryIO, Path]:
        error: OSError | None = None
        for _ in range(10):
            try:
                private_dirs(directory)
                tmp = directory / f"{TMP_PREFIX}{uuid4().hex}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
                return os.fdopen(fd, "wb"), tmp
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
            fsync_dir(path.parent)

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
                private_dirs(dst_path.parent)
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
            fsync_dir(dst_path.parent)
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
                if not name.startswith(TMP_PREFIX):
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
            dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
            rel = os.path.relpath(dirpath, self._root)
            rel_prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.startswith(TMP_PREFIX):
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
            unlink_quietly(opened[1])

        f, tmp = await open_in_thread(discard, self._open_temp, path.parent, key)
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
                if gathered < WRITE_GATHER:
                    continue
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(in_thread(self._write, f, hasher, pieces, key))
                size += gathered
                pieces, gathered = [], 0
            if writing is not None:
                await writing
            if pieces:
                await in_thread(self._write, f, hasher, pieces, key)
                size += gathered
            await in_thread(self._commit, f, tmp, path, state, key)
        except BaseException:
            if writing is not None:
                await wait_quietly(writing)  # the thread must be done with `f` before it closes
            f.close()
            if state.committed:
                # Cancelled after the rename: a failed put must not leave an object.
                unlink_quietly(path)
            else:
                unlink_quietly(tmp)
            raise
        return PutResult(size=size, sha256=hasher.hexdigest())

    async def stat(self, key: str) -> ObjectInfo:
        # In the event loop's thread: a stat of a local file is a few microseconds, a hand-off to a thread and back
        # (the media endpoints stat on every request) about a hundred.
        st = self._stat_file(self._path(key), key)
        if st is None:
            raise ObjectNotFound(key)
        return ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    async def file_path(self, key: str) -> Path | None:
        """Where ``key``'s bytes are, for a server that sends a file itself (zero-copy); None when it is not a regular
        file inside the objects directory (a symlink out of it included), so the caller streams or answers 404."""
        path = self._path(key)

        def check() -> Path | None:
            real = Path(os.path.realpath(path))
            if self._stat_file(real, key) is None or Path(os.path.realpath(self._root)) not in real.parents:
                return None
            return real

        return await asyncio.to_thread(check)

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        validate_range(offset, length, chunk_size)
        path = self._path(key)
        small = length if length is not None and length <= min(INLINE_READ_MAX, chunk_size) else 0
        if small and (cached := read_cached(path, offset, small)):
            yield cached
            return
        remaining = sys.maxsize if length is None else length
        # Opened and the first chunk read in one thread hand-off: a small range (a player's seek) costs one.
        f, data = await open_in_thread(_close_first, self._open_and_read, path, key, offset, min(chunk_size, remaining))
        try:
            while data:
                remaining -= len(data)
                yield data
                if remaining <= 0:
                    return
                data = await in_thread(self._read_chunk, f, min(chunk_size, remaining), key)
        finally:
            f.close()

    def _open_and_read(self, path: Path, key: str, offset: int, n: int) -> tuple[BinaryIO, bytes]:
        f = self._open_read(path, key, offset)
        try:
            return f, self._read_chunk(f, n, key)
        except BaseException:
            f.close()
            raise

    def read_blocking(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        validate_range(0, None, chunk_size)
        with self._open_read(self._path(key), key, 0) as f:
            while data := self._read_chunk(f, chunk_size, key):
                yield data


def read_cached(path: Path, offset: int, n: int) -> bytes | None:
    """The `n` bytes at `offset` of the regular file at `path` if the page cache holds them all, else None (the
    caller reads in a thread, which also says what went wrong, if anything did)."""
    if _NOWAIT is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            return None
        buffer = bytearray(n)
        got = os.preadv(fd, [buffer], offset, _NOWAIT)
    except OSError:  # EAGAIN: not all of it in memory; EOPNOTSUPP: a file system without RWF_NOWAIT
        return None
    finally:
        os.close(fd)
    return bytes(buffer) if got == n else None


def _close_first(opened: tuple[BinaryIO, bytes]) -> None:
    opened[0].close()
