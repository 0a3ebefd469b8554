"""A time limit for each wait on a request body's next piece, with one timer for all of them.

`asyncio.timeout` around every `receive()` schedules and cancels a timer each time (about 5 µs; hypercorn's
64 KiB pieces make that 1,600 times per 100 MB). Here each wait only moves the time it allows; the one timer, when
it fires before that time, re-arms itself for it. Only a wait still running at its end is cancelled: the time
between waits (the object store writing) never counts against the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ReceiveWatchdog:
    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._until: float | None = None  # the running wait's end (loop time); None between waits
        self._task: asyncio.Task[object] | None = None
        self._fired = False

    async def wait(self, receive: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        """`receive()`'s result; TimeoutError when it has not come `timeout_s` from now. A cancellation from
        elsewhere stays a cancellation."""
        if timeout_s <= 0:
            raise TimeoutError
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        task = asyncio.current_task()
        assert task is not None
        self._task, self._until, self._fired = task, until, False
        if self._timer is None or self._timer.when() > until:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(until, self._check)
        try:
            return await receive()
        except asyncio.CancelledError:
            if self._fired and task.uncancel() == 0:  # ours alone: the wait ran out
                raise TimeoutError from None
            raise
        finally:
            self._until = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._until is None or self._task is None:
            return  # between waits: the next one arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._until:
            self._timer = loop.call_at(self._until, self._check)
            return
        self._fired = True
        self._task.cancel()
