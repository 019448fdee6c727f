"""What a finished attempt announces, and the writer of the dispatcher's finished attempts in groups (each group's
outcomes and announcements in one statement)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Any

from services.notifications.attempts import Attempt, AttemptOutcome, Finished
from services.notifications.store import SqlDeliveries
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationRequested,
    NotificationSent,
    NotificationSentPayload,
)
from shared.unit_of_work import UnitOfWork

SERVICE_ACTOR = Actor(id="notifications", role="service")


class Expected:
    """One attempt's promise of an outcome: kept by `Outcomes.record`, or let go by `withdraw` (idempotent)."""

    __slots__ = ("_outcomes", "open")

    def __init__(self, outcomes: Outcomes) -> None:
        self._outcomes = outcomes
        self.open = True

    def withdraw(self) -> None:
        """The attempt ended without an outcome (an error, a cancellation, even before it began)."""
        if self.open:
            self.open = False
            self._outcomes.arrived()


class Outcomes:
    """Records finished attempts in groups: those under way at the same time together, each group in one statement.

    One statement per group instead of a unit of work per delivery: the outcomes, and the announcements of those
    still current put in the outbox, atomic together without a transaction block. While other attempts are still
    under way the writer waits for them, up to `gather_seconds` after the first outcome it holds, so a
    round's quick channels (a file, a log line) and its slower one (a push service's reply) share one statement,
    and the relay one flush, instead of one each. An attempt's `record` returns only once its outcome is
    committed, so nothing is reported done before it is.
    """

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        deliveries: SqlDeliveries,
        clock: Callable[[], datetime],
        gather_seconds: float = 0.02,
    ) -> None:
        self._uow = uow
        self._deliveries = deliveries
        self._clock = clock
        self._gather_seconds = gather_seconds
        self._waiting: list[tuple[Finished, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._under_way = 0  # attempts begun whose outcome has not been handed over yet
        self._all_in = asyncio.Event()

    def expect(self) -> Expected:
        """One more attempt is under way: its outcome will come, or its `Expected` is withdrawn."""
        self._under_way += 1
        self._all_in.clear()
        return Expected(self)

    def arrived(self) -> None:
        """An attempt under way handed its outcome over or withdrew: one fewer to wait for."""
        self._under_way = max(0, self._under_way - 1)
        if not self._under_way:
            self._all_in.set()

    async def record(
        self, expected: Expected, attempt: Attempt, outcome: AttemptOutcome, *, announce: Event[Any] | None
    ) -> bool:
        """Record this outcome (with its announcement); False when the attempt was no longer the current one."""
        finished = Finished(
            attempt.notification_id, attempt.attempt, outcome.status, outcome.detail, outcome.retry_at, announce
        )
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((finished, done))
        expected.withdraw()  # handed over: nothing more to wait for from it
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await done

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                if self._under_way:
                    with suppress(TimeoutError):
                        async with asyncio.timeout(self._gather_seconds):
                            await self._all_in.wait()
                group, self._waiting = self._waiting, []
                try:
                    async with self._uow.single_statement() as work:
                        current = await self._deliveries.finish_all(
                            work.session, [finished for finished, _ in group], at=self._clock(), work=work
                        )
                except Exception as failure:
                    for _, done in group:
                        if not done.done():  # its attempt may have been cancelled (the dispatcher stopping)
                            done.set_exception(failure)
                else:
                    for finished, done in group:
                        if not done.done():
                            done.set_result(finished.notification_id in current)
        finally:
            self._writer = None


def announcing(request: NotificationRequested, *, actor: Actor, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """What every announcement of a delivery (sent, delivered, failed) shares: its envelope's fields, its payload's."""
    payload = request.payload
    common: dict[str, Any] = {
        "school_id": request.school_id,
        "aggregate_id": payload.notification_id,
        "actor": actor,
        "occurred_at": at,
        "cause": request,
    }
    about: dict[str, Any] = {
        "notification_id": payload.notification_id,
        "case_id": payload.case_id,
        "channel": payload.channel,
        "recipient_person_id": payload.recipient.person_id,
    }
    return common, about


def announcement(attempt: Attempt, outcome: AttemptOutcome, *, at: datetime) -> Event[Any] | None:
    """notification.sent or notification.failed for a final outcome, caused by the request; None while retrying."""
    common, about = announcing(attempt.request, actor=SERVICE_ACTOR, at=at)
    if outcome.announced == "sent":
        return NotificationSent.new(NotificationSentPayload(**about, provider_message_id=outcome.detail), **common)
    if outcome.announced == "failed":  # announced only once no further attempt will be made
        return NotificationFailed.new(
            NotificationFailedPayload(**about, reason=outcome.detail, retryable=False), **common
        )
    return None
