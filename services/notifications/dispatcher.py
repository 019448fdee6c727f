"""Sends recorded deliveries outside any consumer transaction, so a rolled-back batch or a restart sends nothing twice.

Each due row is claimed (`FOR UPDATE SKIP LOCKED`, marked `sending`, attempt counted) and committed BEFORE its
channel is called; the outcome is recorded in a unit of work of its own, with notification.sent or
notification.failed in the outbox. A row still `sending` after `sending_timeout` was cut off mid-send (the
process died): it is re-sent only through a channel whose re-send the recipient sees once (`resend_safe`),
otherwise it is reported failed so routing moves on instead of waiting. A channel with a point of no return
(SMTP's end of data) awaits the delivery's commit point there, which records the attempt `committing`: one cut
off after that is recorded `sent_unconfirmed` and never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.notifications.attempts import AttemptOutcome, after_attempt, unconfirmed
from services.notifications.channels import Channel, Delivery, DeliveryFailed, SentUnconfirmed
from services.notifications.domain import NoParentWords, render
from services.notifications.links import AckLinks
from services.notifications.store import Attempt, Finished, SqlDeliveries
from shared.background import PollingLoop
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
)
from shared.tracing import span_in_trace
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SERVICE_ACTOR = Actor(id="notifications", role="service")
CLAIM_LIMIT = 100


@dataclass(frozen=True)
class DeliveryRules:
    """How hard to try: attempts, back-off, when an attempt counts as cut off, and sends in flight."""

    max_attempts: int = 5
    backoff_seconds: Sequence[float] = (5.0, 30.0, 120.0, 600.0)
    sending_timeout: timedelta = timedelta(seconds=120)
    concurrency: int = 16


class Outcomes:
    """Records finished attempts in groups: a claimed round's outcomes together, each group in one statement.

    One statement per group instead of a unit of work per delivery: the outcomes, and the announcements of those
    still current put in the outbox, atomic together without a transaction block. While attempts of the round are
    still under way the writer waits for them, up to `gather_seconds` after the first outcome it holds, so a
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

    def expect(self, attempts: int) -> None:
        """`attempts` more are under way: their outcomes will come (or `withdraw` says one will not)."""
        self._under_way += attempts
        if self._under_way:
            self._all_in.clear()

    def withdraw(self) -> None:
        """An attempt ended without an outcome (an error, a cancellation): nothing more to wait for from it."""
        self._under_way = max(0, self._under_way - 1)
        if not self._under_way:
            self._all_in.set()

    def round_over(self) -> None:
        """The dispatcher's round has ended: whatever was not handed over will not be."""
        self._under_way = 0
        self._all_in.set()

    async def record(self, attempt: Attempt, outcome: AttemptOutcome, *, announce: Event[Any] | None) -> bool:
        """Record this outcome (with its announcement); False when the attempt was no longer the current one."""
        finished = Finished(
            attempt.notification_id, attempt.attempt, outcome.status, outcome.detail, outcome.retry_at, announce
        )
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((finished, done))
        self.withdraw()  # handed over
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
                            work.session, [finished for finished, _ in group], at=self._clock()
                        )
                        if any(finished.announce for finished, _ in group):
                            work.enqueued()  # the relay is woken once the statement has committed
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
        self._loop = PollingLoop(self.dispatch_due, name="notification-dispatcher", poll_seconds=poll_seconds)

    def wake(self) -> None:
        """New requests were committed: look now rather than at the next poll."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def dispatch_due(self) -> int:
        """Send everything due now; returns how many attempts were made."""
        made = 0
        while True:
            async with self._uow.single_statement() as work:
                claimed = await self._deliveries.claim_ready(
                    work.session, now=self._clock(), limit=CLAIM_LIMIT, sending_timeout=self._rules.sending_timeout
                )
            # Committed: each row is `sending` with its attempt counted before any channel is called.
            self._outcomes.expect(len(claimed))
            try:
                await asyncio.gather(*(self._attempt(attempt) for attempt in claimed))
            finally:
                self._outcomes.round_over()  # none left to wait for, even if the round was cut short
            made += len(claimed)
            if len(claimed) < CLAIM_LIMIT:
                return made

    async def _attempt(self, attempt: Attempt) -> None:
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
                announce = self._announce(attempt, outcome)
            except BaseException:
                self._outcomes.withdraw()
                raise
            recorded = await self._outcomes.record(attempt, outcome, announce=announce)
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

    def _announce(self, attempt: Attempt, outcome: AttemptOutcome) -> Event[Any] | None:
        request = attempt.request
        payload = request.payload
        common: dict[str, Any] = {
            "school_id": request.school_id,
            "aggregate_id": payload.notification_id,
            "actor": SERVICE_ACTOR,
            "occurred_at": self._clock(),
            "cause": request,
        }
        if outcome.announced == "sent":
            sent = NotificationSentPayload(
                notification_id=payload.notification_id,
                case_id=payload.case_id,
                channel=payload.channel,
                recipient_person_id=payload.recipient.person_id,
                provider_message_id=outcome.detail,
            )
            return NotificationSent.new(sent, **common)
        if outcome.announced == "failed":
            failed = NotificationFailedPayload(
                notification_id=payload.notification_id,
                case_id=payload.case_id,
                channel=payload.channel,
                recipient_person_id=payload.recipient.person_id,
                reason=outcome.detail,
                retryable=False,  # announced only once no further attempt will be made
            )
            return NotificationFailed.new(failed, **common)
        return None
