"""The long-running processes' event loop (callrec/event_loop.py)."""

from __future__ import annotations

import asyncio

import uvloop

from callrec import event_loop


def test_run_uses_uvloop_and_returns_the_result() -> None:
    async def main() -> tuple[type[asyncio.AbstractEventLoop], int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()), 42

    loop_type, result = event_loop.run(main())
    assert issubclass(loop_type, uvloop.Loop)
    assert result == 42
