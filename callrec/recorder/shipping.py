"""Shipping a growing recording to the object store while it records: the bytes the file gained, every few seconds,
as numbered chunk objects. The chunks uploaded so far, concatenated, are a prefix of the file (a fragmented MP4 or
an Ogg, `render.open_output(..., fragmented=True)`), which `media.segments.join_parts` can play up to its last
complete fragment or page when the recorder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from callrec.storage.objects.base import MiB, ObjectStore
from callrec.storage.objects.keys import validate_key
from callrec.storage.objects.threads import close_file, in_thread, open_in_thread

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 64 * MiB  # one chunk object at most; more pending is shipped as further chunks
READ_BYTES = MiB  # the file is read (and uploaded) in pieces of this size
FINAL_TRIES = 4  # the last ship, after the file was closed, is tried this often before giving up
BACKOFF_S = 0.5  # first wait between those tries; doubles each time


@dataclass
class Shipped:
    """What a SegmentShipper has uploaded so far."""

    segments: int  # chunk objects uploaded
    bytes: int  # bytes uploaded in total


class SegmentShipper:
    """Uploads the bytes a growing local file gains, as numbered chunk objects `{prefix}{seq:06d}`.

    Chunk n always holds the bytes right after chunk n - 1: a failed upload is tried again with the same key and
    offset, never skipped."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        path: Path,
        *,
        every_s: float = 10.0,
        first_after_s: float = 2.0,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
        final_tries: int = FINAL_TRIES,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        validate_key(self._key(prefix, 0))
        if max_chunk_bytes <= 0 or final_tries <= 0:
            raise ValueError("max_chunk_bytes and final_tries must be positive")
        self.store, self.prefix, self.path = store, prefix, Path(path)
        self.every_s, self.first_after_s = every_s, first_after_s
        self.max_chunk_bytes, self.final_tries, self.backoff_s = max_chunk_bytes, final_tries, backoff_s
        self._offset = 0  # bytes of the file uploaded
        self._segments = 0
        self._lock = asyncio.Lock()

    @staticmethod
    def _key(prefix: str, seq: int) -> str:
        return f"{prefix}{seq:06d}"

    @property
    def shipped(self) -> Shipped:
        return Shipped(segments=self._segments, bytes=self._offset)

    async def run(self, stopped: asyncio.Event) -> Shipped:
        """Ships after `first_after_s`, then every `every_s`; once `stopped` is set (by the caller, after the
        file was closed) ships the rest and returns the totals. Raises if that last ship keeps failing."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.first_after_s
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), max(0.0, due - loop.time()))
            if stopped.is_set():
                break
            try:
                await self._ship_pending()
            except Exception as exc:  # noqa: BLE001 - tried again at the next tick, from the same offset
                log.warning("shipping %s failed, retrying in %.1f s: %s", self.path, self.every_s, exc)
            due = max(due + self.every_s, loop.time())
        delay = self.backoff_s
        for attempt in range(1, self.final_tries + 1):
            try:
                await self._ship_pending()
                return self.shipped
            except Exception as exc:
                if attempt == self.final_tries:
                    raise
                log.warning("shipping the end of %s failed (try %d), retrying: %s", self.path, attempt, exc)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _ship_pending(self) -> None:
        """Ships everything the file holds now, in as many chunks as that takes."""
        while await self.ship() == self.max_chunk_bytes:
            pass

    async def ship(self) -> int:
        """Uploads bytes [offset, current size) (at most `max_chunk_bytes`) as the next chunk; returns how many
        (0 if there is nothing new)."""
        async with self._lock:
            size = await in_thread(self._size)
            length = min(size - self._offset, self.max_chunk_bytes)
            if length <= 0:
                return 0
            f = await open_in_thread(close_file, open, self.path, "rb")
            try:
                async with aclosing(self._pieces(f, self._offset, length)) as pieces:
                    await self.store.put_stream(self._key(self.prefix, self._segments), pieces)
            finally:
                f.close()
            self._offset += length
            self._segments += 1
            return length

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0  # not created yet

    @staticmethod
    async def _pieces(f: BinaryIO, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        await in_thread(f.seek, offset)
        while length > 0:
            data = await in_thread(f.read, min(READ_BYTES, length))
            if not data:
                raise OSError(f"{f.name} shrank while being shipped")
            length -= len(data)
            yield data
