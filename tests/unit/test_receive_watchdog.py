"""The upload's receive time limit: a wait that runs out is a TimeoutError, time between waits never counts, and a
cancellation from elsewhere stays one."""

from __future__ import annotations

import asyncio

import pytest

from callrec.api.recorder_backend.watchdog import ReceiveWatchdog


def never() -> asyncio.Future[bytes]:
    return asyncio.get_running_loop().create_future()


def after(delay_s: float, value: bytes) -> asyncio.Future[bytes]:
    future = never()
    asyncio.get_running_loop().call_later(delay_s, future.set_result, value)
    return future


async def test_a_wait_that_runs_out_is_a_timeout() -> None:
    watchdog = ReceiveWatchdog()
    with pytest.raises(TimeoutError):
        await watchdog.wait(never, 0.05)
    watchdog.close()


async def test_no_time_left_is_a_timeout_without_receiving() -> None:
    received: list[int] = []

    async def receive() -> bytes:
        received.append(1)
        return b"x"

    with pytest.raises(TimeoutError):
        await ReceiveWatchdog().wait(receive, 0.0)
    assert received == []


async def test_each_wait_has_its_own_time_and_the_gaps_do_not_count() -> None:
    watchdog = ReceiveWatchdog()
    pieces = []
    for _ in range(4):  # together longer than one wait's time, each well within it
        pieces.append(await watchdog.wait(lambda: after(0.02, b"piece"), 0.2))
        await asyncio.sleep(0.3)  # the store writing: longer than a wait's time, outside any wait
    assert pieces == [b"piece"] * 4
    watchdog.close()


async def test_a_shorter_wait_after_a_longer_one_is_held_to_its_time() -> None:
    watchdog = ReceiveWatchdog()
    assert await watchdog.wait(lambda: after(0.01, b"a"), 30.0) == b"a"
    with pytest.raises(TimeoutError):
        await watchdog.wait(never, 0.05)  # the drain after a refusal: a short wait after the long ones
    watchdog.close()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    watchdog = ReceiveWatchdog()
    waiting = asyncio.ensure_future(watchdog.wait(never, 30.0))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    watchdog.close()


async def test_a_timed_out_wait_leaves_the_task_uncancelled() -> None:
    watchdog = ReceiveWatchdog()
    with pytest.raises(TimeoutError):
        await watchdog.wait(never, 0.02)
    await asyncio.sleep(0.05)  # no cancellation is left pending for the task's next await
    assert await watchdog.wait(lambda: after(0.01, b"more"), 1.0) == b"more"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    watchdog.close()
