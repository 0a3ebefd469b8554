"""Blocking work in worker threads, cancelled safely: a cancelled caller waits for the thread before cleaning up."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


async def wait_quietly(fut: Awaitable[object]) -> None:
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


async def in_thread(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``asyncio.to_thread`` that, when cancelled, lets the thread finish first.

    A thread cannot be interrupted, so without this a caller's cleanup (closing
    a file, releasing a connection) could run while the thread still uses it.
    """
    return await open_in_thread(_ignore, func, *args, **kwargs)


def _ignore(_: object) -> None:
    pass


async def open_in_thread(
    cleanup: Callable[[_T], object], func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``in_thread`` for calls acquiring a resource: if the caller is cancelled
    while ``func`` runs, ``cleanup`` releases whatever it returned."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await wait_quietly(task)
        if not task.cancelled() and task.exception() is None:
            with contextlib.suppress(Exception):
                cleanup(task.result())
        raise


async def aclose_iterator(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def file_chunks(f: BinaryIO, chunk_size: int) -> AsyncGenerator[bytes, None]:
    while True:
        data = await in_thread(f.read, chunk_size)
        if not data:
            return
        yield data


def fsync_dir(path: Path) -> None:
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


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def close_file(f: BinaryIO) -> None:
    f.close()
