"""One background loop for work a service repeats: run a step on every wake-up or poll tick until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)


class PollingLoop:
    """Calls `step` when woken or every `poll_seconds`; a failing step is logged and tried again next tick."""

    def __init__(self, step: Callable[[], Awaitable[Any]], *, name: str, poll_seconds: float) -> None:
        self._step = step
        self._name = name
        self._poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Run the step soon rather than at the next tick."""
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 a cancellation that arrives as the wait completes (a
            # wake-up just after a commit, as `stop` runs) is lost by `wait_for`, and the loop would run on.
            with suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wakeup.wait()
            self._wakeup.clear()
            if self._stopping:
                return
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; will retry", self._name)

    def start(self) -> None:
        """Start the loop; the first step runs at once."""
        self._wakeup.set()
        self._stopping = False
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self._name)

    async def stop(self) -> None:
        """Stop the loop: cancelled mid-step, or, should a cancellation be lost, at its next turn."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
