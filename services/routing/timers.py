"""Durable timers: a due-table in PostgreSQL, polled by every routing instance.

A due row is claimed with `FOR UPDATE SKIP LOCKED`, acted on, marked fired and its events put in the outbox,
all in one transaction: a restart never loses a deadline (it is a row) and never fires one twice (the row is
marked in the same commit as its effects; a crash before the commit leaves it pending, to fire once later).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.routing.store import Deadlines, DueDeadline
from shared.background import PollingLoop
from shared.contracts.envelope import Event
from shared.tracing import span_in_trace
from shared.unit_of_work import UnitOfWork, Work

log = logging.getLogger(__name__)

OnDue = Callable[..., Awaitable[list[Event[Any]]]]


class DeadlineScheduler:
    """Fires due deadlines exactly once across restarts and instances."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        deadlines: Deadlines,
        on_due: OnDue,
        clock: Callable[[], datetime],
        poll_seconds: float = 1.0,
    ) -> None:
        self._uow = uow
        self._deadlines = deadlines
        self._on_due = on_due
        self._clock = clock
        self._loop = PollingLoop(self.fire_due, name="deadline-scheduler", poll_seconds=poll_seconds)

    async def fire_due(self) -> int:
        """Fire every deadline due now; returns how many fired."""
        fired = 0
        while True:
            async with self._uow.begin() as work:
                due = await self._deadlines.claim_due(work.session, now=self._clock(), limit=20)
                for deadline in due:
                    await self._fire(work, deadline)
            fired += len(due)
            if len(due) < 20:
                return fired

    async def _fire(self, work: Work, deadline: DueDeadline) -> None:
        traceparent = deadline.detail.get("cause", {}).get("traceparent")
        with span_in_trace(
            f"deadline {deadline.kind}", traceparent=traceparent, **{"safeguard.deadline_id": deadline.deadline_id}
        ):
            events = await self._on_due(deadline, session=work.session)
            work.emit(events)
            await self._deadlines.close(
                work.session, deadline_id=deadline.deadline_id, status="fired", at=self._clock()
            )
        log.info(
            "deadline %s (%s) for %s fired: %s",
            deadline.deadline_id,
            deadline.kind,
            deadline.case_id,
            [e.type for e in events],
        )

    def wake(self) -> None:
        """A deadline was brought forward: look now."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
