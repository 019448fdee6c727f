"""Sends recorded deliveries outside any consumer transaction, so a rolled-back batch or a restart sends nothing twice.

Each due row is claimed (marked `sending`, attempt counted) and committed BEFORE its channel is called. A new
request is claimed by the statement that records it, when that statement commits by itself and the dispatcher has
room (`handing_over`): the handler hands the claimed attempts over as soon as that statement has returned
(committed), and they begin at once, with no claim statement of the dispatcher's. Everything else (a retry after its
back-off, a request left beyond the room or recorded in a transaction block, one recorded by another instance, a
cut-off attempt) is claimed by the dispatcher's own statement (`FOR UPDATE SKIP LOCKED`) on a wake-up or poll tick.
The outcome is recorded in a unit of work of its own, with notification.sent or notification.failed in the outbox. A
row still `sending` after `sending_timeout` was cut off mid-send (the process died, perhaps before its hand-over):
it is re-sent only through a channel whose re-send the recipient sees once (`resend_safe`), otherwise it is reported
failed so routing moves on instead of waiting. A channel with a point of no return (SMTP's end of data) awaits the
delivery's commit point there, which records the attempt `committing`: one cut off after that is recorded
`sent_unconfirmed` and never re-sent. A wake-up claims at once, while earlier attempts are still under way; the
claim skips this process's own attempts under way, however long they take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notifications.attempts import Attempt, AttemptOutcome, after_attempt, unconfirmed
from services.notifications.channels import Channel, Delivery, DeliveryFailed, SentUnconfirmed
from services.notifications.domain import NoParentWords, render
from services.notifications.links import AckLinks
from services.notifications.outcomes import Expected, Outcomes, announcement
from services.notifications.store import SqlDeliveries
from shared.background import PollingLoop
from shared.tracing import span_in_trace
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

CLAIM_LIMIT = 100


@dataclass(frozen=True)
class DeliveryRules:
    """How hard to try: attempts, back-off, when an attempt counts as cut off, and sends in flight."""

    max_attempts: int = 5
    backoff_seconds: Sequence[float] = (5.0, 30.0, 120.0, 600.0)
    sending_timeout: timedelta = timedelta(seconds=120)
    concurrency: int = 16


@dataclass(frozen=True)
class HandOver:
    """Room kept for attempts a request statement claims itself, and how to begin them once it has committed."""

    room: int
    """At most this many rows may be recorded claimed (0: none, all `requested`)."""
    sending_timeout: timedelta
    begin: Callable[[Sequence[Attempt]], None]
    """Begin the claimed attempts now: call it only once the statement that claimed them has committed."""


class Dispatcher:
    """Claims due deliveries, sends them, records each outcome once (woken after a request commits)."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        deliveries: SqlDeliveries,
        channels: Mapping[str, Channel],
        signer: AckLinks,
        console_url: str,
        clock: Callable[[], datetime],
        rules: DeliveryRules = DeliveryRules(),
        poll_seconds: float = 1.0,
    ) -> None:
        self._uow = uow
        self._deliveries = deliveries
        self._channels = channels
        self._signer = signer
        self._console_url = console_url
        self._clock = clock
        self._rules = rules
        self._in_flight = asyncio.Semaphore(rules.concurrency)
        self._outcomes = Outcomes(uow=uow, deliveries=deliveries, clock=clock)
        self._attempts: dict[asyncio.Task[None], str] = {}  # begun, not yet ended: their notification ids
        self._reserved = 0  # room kept for hand-overs whose statement is still running
        self._accepting = False  # started and not stopping: hand-overs may begin attempts
        self._loop = PollingLoop(self._start_due, name="notification-dispatcher", poll_seconds=poll_seconds)

    def wake(self) -> None:
        """New requests were committed: look now rather than at the next poll."""
        self._loop.wake()

    def start(self) -> None:
        self._accepting = True
        self._loop.start()

    async def stop(self) -> None:
        """Stop claiming, then cut off the attempts still under way (left `sending`, as a crash leaves them)."""
        self._accepting = False
        await self._loop.stop()
        for task in self._attempts:
            task.cancel()
        if self._attempts:
            await asyncio.wait(list(self._attempts))

    @contextmanager
    def handing_over(self, wanted: int) -> Iterator[HandOver]:
        """Room for up to `wanted` attempts that the caller's statement claims itself (none unless the dispatcher is
        running), kept from the dispatcher's own claims until the `with` ends, so no more than CLAIM_LIMIT are under
        way. A statement that fails hands nothing over; one that committed and never hands over (the process died)
        leaves its rows `sending`, recovered after `sending_timeout` like any attempt cut off."""
        room = max(0, min(wanted, self._room())) if self._accepting else 0
        self._reserved += room

        def begin(attempts: Sequence[Attempt]) -> None:
            if len(attempts) > room:
                raise ValueError(f"{len(attempts)} attempts handed over for room of {room}")
            if self._accepting:  # stopping: left `sending`, as a crash leaves them
                for attempt in attempts:
                    self._begin(attempt)

        try:
            yield HandOver(room, self._rules.sending_timeout, begin)
        finally:
            self._reserved -= room

    def _room(self) -> int:
        return CLAIM_LIMIT - len(self._attempts) - self._reserved

    async def dispatch_due(self) -> int:
        """Send everything due now; returns how many attempts were made, once each has its outcome recorded."""
        started: list[asyncio.Task[None]] = []
        try:
            made = await self._start_due(started)
            if started:
                await asyncio.gather(*started)
        except asyncio.CancelledError:
            for task in started:
                task.cancel()
            raise
        return made

    async def _start_due(self, started: list[asyncio.Task[None]] | None = None) -> int:
        """Claim what is due and begin its attempts without waiting for them (the loop's step).

        A wake-up during earlier attempts claims at once instead of after them. At most CLAIM_LIMIT attempts are
        under way at a time (hand-overs' room counted), so nothing claimed waits long behind the in-flight limit and
        reaches `sending_timeout`.
        """
        made = 0
        while True:
            room = self._room()
            if room <= 0:
                if not self._attempts:
                    return made  # all the room is kept for hand-overs under way; the next wake-up looks again
                await asyncio.wait(list(self._attempts), return_when=asyncio.FIRST_COMPLETED)
                continue
            async with self._uow.single_statement() as work:
                claimed = await self._deliveries.claim_ready(
                    work.session,
                    now=self._clock(),
                    limit=room,
                    sending_timeout=self._rules.sending_timeout,
                    busy=self._attempts.values(),  # never its own attempts under way, as rounds once waited for
                )
            # Committed: each row is `sending` with its attempt counted before any channel is called.
            for attempt in claimed:
                task = self._begin(attempt)
                if started is not None:
                    started.append(task)
            made += len(claimed)
            if len(claimed) < room:
                return made

    def _begin(self, attempt: Attempt) -> asyncio.Task[None]:
        expected = self._outcomes.expect()  # before any attempt runs, so the writer waits for all of these
        task = asyncio.create_task(self._attempt(attempt, expected))
        self._attempts[task] = attempt.notification_id

        def ended(task: asyncio.Task[None]) -> None:
            self._attempts.pop(task, None)
            expected.withdraw()  # nothing if its outcome was handed over; cancelled before it began otherwise
            if not task.cancelled() and (failure := task.exception()) is not None:
                log.error("notification %s: attempt failed", attempt.notification_id, exc_info=failure)

        task.add_done_callback(ended)
        return task

    async def _attempt(self, attempt: Attempt, expected: Expected) -> None:
        request = attempt.request
        with span_in_trace(  # no span is made when nothing exports them (shared/tracing.py)
            f"deliver {request.payload.channel}",
            traceparent=request.traceparent,
            **{"safeguard.notification_id": attempt.notification_id},
        ):
            try:
                async with self._in_flight:
                    outcome = await self._send(attempt)
                # Built in this span, so the announcement is a child of the delivery that caused it.
                announce = announcement(attempt, outcome, at=self._clock())
            except BaseException:
                expected.withdraw()
                raise
            recorded = await self._outcomes.record(expected, attempt, outcome, announce=announce)
        log.info(
            "notification %s via %s, attempt %d: %s",
            attempt.notification_id,
            request.payload.channel,
            attempt.attempt,
            outcome.status if recorded else "superseded",
        )

    async def _send(self, attempt: Attempt) -> AttemptOutcome:
        request = attempt.request.payload
        now = self._clock()
        rules = self._rules
        channel = self._channels.get(request.channel)
        if attempt.past_commit_point:
            # Cut off between "committing" and the server's reply: it may well have arrived; never send it twice.
            return unconfirmed("cut off after the end of data was committed")
        try:
            if channel is None:
                raise DeliveryFailed(f"no {request.channel} channel is configured", retryable=False)
            if attempt.interrupted and not getattr(channel, "resend_safe", False):
                # The last attempt may have reached the person; a blind re-send could reach them twice.
                raise DeliveryFailed("cut off mid-send; this channel cannot re-send safely", retryable=False)
            token = self._signer.token(request.notification_id, person_id=request.recipient.person_id, now=now)
            receipt = self._signer.receipt_token(request.notification_id)
            try:
                message = render(request, console_url=self._console_url, ack_token=token, receipt_token=receipt)
            except NoParentWords as missing:
                raise DeliveryFailed(str(missing), retryable=False) from missing
            delivery = Delivery(request.notification_id, request.address, message, self._commit_point(attempt))
            provider_id = await channel.send(delivery)
        except SentUnconfirmed as cut_off:
            return unconfirmed(str(cut_off))
        except DeliveryFailed as failed:
            return after_attempt(
                attempt.attempt,
                now=now,
                failure=str(failed),
                retryable=failed.retryable,
                max_attempts=rules.max_attempts,
                backoff=rules.backoff_seconds,
            )
        return after_attempt(attempt.attempt, now=now, provider_id=provider_id, max_attempts=rules.max_attempts)

    def _commit_point(self, attempt: Attempt) -> Callable[[Callable[[], None]], Awaitable[None]]:
        """Records the attempt `committing` and makes the send final in the same instant as that commit leaves."""

        async def committing(end_of_data: Callable[[], None]) -> None:
            async with self._uow.sessions() as session:
                await session.begin()
                current = await self._deliveries.mark_committing(
                    session, notification_id=attempt.notification_id, attempt=attempt.attempt
                )  # the row is now locked by this transaction: nothing can change it before the COMMIT
                if not current:
                    await session.rollback()
                    # Reclaimed by another instance after the sending timeout: it owns the delivery now.
                    raise DeliveryFailed("superseded before the point of no return", retryable=True)
                commit = asyncio.ensure_future(session.commit())
                # One turn of the loop runs the commit's first step, which writes COMMIT to PostgreSQL's socket;
                # the terminator follows at once. A kill -9 now leaves both on their way (PostgreSQL commits
                # what it has read), only the COMMIT (a few microseconds: the message is lost, recorded
                # `committing`), or neither (`sending`: re-sent, the server discarded the body).
                await asyncio.sleep(0)
                end_of_data()
                await commit

        return committing
