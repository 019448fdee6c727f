"""The background loop stops when asked, even when the cancellation that asks it is lost on the way.

On Python 3.11 `asyncio.wait_for` drops a cancellation that arrives as the awaited thing completes; a relay whose
flush was finishing as its service stopped then ran on, and the service's stop waited for it forever.
"""

from __future__ import annotations

import asyncio
import contextlib

from shared.background import PollingLoop


async def test_a_step_that_loses_its_cancellation_still_ends_the_loop_at_stop() -> None:
    steps = 0
    started = asyncio.Event()

    async def step_that_swallows_cancellation() -> None:
        nonlocal steps
        steps += 1
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # as a lost cancellation behaves: the step returns
            await asyncio.sleep(30)

    loop = PollingLoop(step_that_swallows_cancellation, name="test-loop", poll_seconds=0.01)
    loop.start()
    await started.wait()
    stopping = asyncio.create_task(loop.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "stop() is still waiting for a loop that ran on"
    assert steps == 1


async def test_a_woken_loop_runs_its_step_and_stops_between_steps() -> None:
    ran = asyncio.Event()

    async def step() -> None:
        ran.set()

    loop = PollingLoop(step, name="test-loop", poll_seconds=30)
    loop.start()  # the first step runs at once
    async with asyncio.timeout(5):
        await ran.wait()
        ran.clear()
        loop.wake()
        await ran.wait()
        await loop.stop()
