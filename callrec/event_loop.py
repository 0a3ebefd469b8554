"""The event loop of callrec's long-running processes (`callrec api`, `worker`, `recorder`): uvloop, libuv's loop.
On the bench's 2 cores it gave the recording life cycle 2-7 % more recordings/s than asyncio's own loop (three
alternated pairs, noisy; bench/README, "What changed"). Where uvloop is not installed (it has no Windows build),
asyncio's loop runs instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - only where uvloop has no build
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on callrec's event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
