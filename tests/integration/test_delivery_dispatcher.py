"""The dispatcher against real PostgreSQL and NATS: a delivery is claimed and committed before its channel is
called, retried with back-off while the fault is transient, and an attempt cut off by a crash is reconciled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.notifications.attempts import Finished
from services.notifications.channels import Delivery, DeliveryFailed
from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.links import AckLinks
from services.notifications.outcomes import SERVICE_ACTOR
from services.notifications.store import SCHEMA, SqlDeliveries, deliveries
from shared.contracts.envelope import utc_now
from shared.contracts.events import NotificationSent, NotificationSentPayload, PersonRef
from shared.inbox_outbox import InboxOutbox
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-dsl", name="Mx Example Lead", role="designated_safeguarding_lead")


class ScriptedChannel:
    """Answers each send with the next scripted outcome (an id, or a DeliveryFailed) and counts what it got."""

    name = "email"

    def __init__(self, *outcomes: str | DeliveryFailed, resend_safe: bool = True) -> None:
        self._outcomes: Iterator[str | DeliveryFailed] = iter(outcomes)
        self.resend_safe = resend_safe
        self.sent: list[str] = []

    async def send(self, delivery: Delivery) -> str:
        outcome = next(self._outcomes)
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        self.sent.append(delivery.notification_id)
        return outcome


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


def dispatcher(runtime: ServiceRuntime, channel: ScriptedChannel, clock: Clock) -> Dispatcher:
    return Dispatcher(
        uow=runtime.uow,
        deliveries=SqlDeliveries(),
        channels={"email": channel},
        signer=AckLinks(b"test-key"),
        console_url="http://127.0.0.1:8081",
        clock=clock,
        rules=DeliveryRules(max_attempts=3, backoff_seconds=(5.0, 60.0), sending_timeout=timedelta(seconds=30)),
    )


async def record(runtime: ServiceRuntime, clock: Clock) -> str:
    request = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    async with runtime.uow.begin() as work:
        assert await SqlDeliveries().record_requested(work.session, request, at=clock())
    return request.payload.notification_id


async def row(runtime: ServiceRuntime, notification_id: str) -> Any:
    async with runtime.sessions() as session:
        query = sa.select(deliveries).where(deliveries.c.notification_id == notification_id)
        return (await session.execute(query)).one()


async def test_a_request_is_kept_as_the_json_text_it_was_published_as_and_claimed_back_as_itself(
    settings: Settings,
) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    request = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    async with running(runtime, subscribers=False):
        async with runtime.uow.begin() as work:
            assert await SqlDeliveries().record_requested(work.session, request, at=clock())
        kept = await row(runtime, request.payload.notification_id)
        async with runtime.uow.single_statement() as work:
            claimed = await SqlDeliveries().claim_ready(
                work.session, now=clock(), limit=10, sending_timeout=timedelta(seconds=30)
            )
    assert kept.request == request.model_dump_json(), "the text as published, not JSONB's re-spelling"
    assert [attempt.request for attempt in claimed] == [request]


async def test_a_transient_fault_is_retried_after_its_back_off_and_then_sent(settings: Settings) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    channel = ScriptedChannel(DeliveryFailed("mail server said 421", retryable=True), "<m1@safeguard.local>")
    sender = dispatcher(runtime, channel, clock)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        notification_id = await record(runtime, clock)
        assert await sender.dispatch_due() == 1
        waiting = await row(runtime, notification_id)
        assert (waiting.status, waiting.attempts) == ("requested", 1)
        assert waiting.ready_at == clock.now + timedelta(seconds=5)
        assert await sender.dispatch_due() == 0, "not before its back-off"
        clock.now += timedelta(seconds=5)
        assert await sender.dispatch_due() == 1
        sent = await eventually(lambda: stream_events(js, settings, "notification.sent"), what="sent")
        assert await stream_events(js, settings, "notification.failed") == []
    assert channel.sent == [notification_id]
    assert [e.payload.provider_message_id for e in sent] == ["<m1@safeguard.local>"]
    assert (await row(runtime, notification_id)).status == "sent"


async def test_a_fault_that_outlasts_every_attempt_is_announced_failed_once(settings: Settings) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    unreachable = DeliveryFailed("SMS provider unreachable", retryable=True)
    sender = dispatcher(runtime, ScriptedChannel(unreachable, unreachable, unreachable), clock)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        notification_id = await record(runtime, clock)
        for _ in range(3):
            await sender.dispatch_due()
            clock.now += timedelta(minutes=2)
        assert await sender.dispatch_due() == 0
        [failed] = await eventually(lambda: stream_events(js, settings, "notification.failed"), what="failed")
    assert failed.payload.retryable is False
    assert failed.payload.reason == "gave up after 3 attempts: SMS provider unreachable"
    assert (await row(runtime, notification_id)).attempts == 3


async def mark_cut_off(runtime: ServiceRuntime, notification_id: str, *, at: datetime) -> None:
    """What a crash between claiming and recording leaves: the row `sending`, its attempt counted."""
    async with runtime.uow.begin() as work:
        await work.session.execute(
            sa.update(deliveries)
            .where(deliveries.c.notification_id == notification_id)
            .values(status="sending", attempts=1, attempted_at=at, ready_at=at + timedelta(seconds=30))
        )


@pytest.mark.parametrize(("resend_safe", "outcome"), [(True, "sent"), (False, "failed")])
async def test_an_attempt_cut_off_by_a_crash_is_reconciled_after_the_timeout(
    settings: Settings, resend_safe: bool, outcome: str
) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    channel = ScriptedChannel("<again@safeguard.local>", resend_safe=resend_safe)
    sender = dispatcher(runtime, channel, clock)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        notification_id = await record(runtime, clock)
        await mark_cut_off(runtime, notification_id, at=clock.now)
        assert await sender.dispatch_due() == 0, "an attempt may still be in flight elsewhere"
        clock.now += timedelta(seconds=31)
        assert await sender.dispatch_due() == 1
        [announced] = await eventually(lambda: stream_events(js, settings, f"notification.{outcome}"), what=outcome)
    reconciled = await row(runtime, notification_id)
    assert (reconciled.status, reconciled.attempts) == (outcome, 2)
    assert channel.sent == ([notification_id] if resend_safe else [])
    if outcome == "failed":
        assert "cut off mid-send" in announced.payload.reason


class CountingDeliveries(SqlDeliveries):
    """Counts the groups of outcomes written (one unit of work each)."""

    def __init__(self) -> None:
        self.groups: list[int] = []

    async def finish_all(self, session: Any, finished: Any, **options: Any) -> set[str]:
        self.groups.append(len(finished))
        return await super().finish_all(session, finished, **options)


async def test_outcomes_finished_together_are_recorded_together_each_announced_once(settings: Settings) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    channel = ScriptedChannel(*(f"<m{n}@safeguard.local>" for n in range(12)))
    store = CountingDeliveries()
    sender = Dispatcher(
        uow=runtime.uow,
        deliveries=store,
        channels={"email": channel},
        signer=AckLinks(b"test-key"),
        console_url="http://127.0.0.1:8081",
        clock=clock,
    )
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        ids = [await record(runtime, clock) for _ in range(12)]
        assert await sender.dispatch_due() == 12
        sent = await eventually(
            lambda: stream_events(js, settings, "notification.sent"), until=lambda found: len(found) == 12, what="sent"
        )
    assert sorted(e.payload.notification_id for e in sent) == sorted(ids)
    assert sum(store.groups) == 12
    assert len(store.groups) < 12, f"one unit of work per delivery: {store.groups}"
    assert {(await row(runtime, n)).status for n in ids} == {"sent"}


async def test_an_outcome_of_an_attempt_since_reclaimed_is_neither_recorded_nor_announced(settings: Settings) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    store, outbox = SqlDeliveries(), InboxOutbox(SCHEMA).outbox
    request = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    announcements = {
        attempt: NotificationSent.new(
            NotificationSentPayload(
                notification_id=request.payload.notification_id,
                case_id=request.payload.case_id,
                channel="email",
                recipient_person_id=PERSON.person_id,
                provider_message_id=f"<m{attempt}@safeguard.local>",
            ),
            school_id=request.school_id,
            aggregate_id=request.payload.notification_id,
            actor=SERVICE_ACTOR,
            occurred_at=utc_now(),
            cause=request,
        )
        for attempt in (1, 2)
    }

    async def finish(attempt: int) -> set[str]:
        async with runtime.uow.single_statement() as work:
            done = Finished(request.payload.notification_id, attempt, "sent", f"<m{attempt}@safeguard.local>")
            return await store.finish_all(work.session, [replace(done, announce=announcements[attempt])], at=clock.now)

    async def in_outbox() -> list[Any]:
        async with runtime.sessions() as session:
            ids = [event.event_id for event in announcements.values()]
            return list(
                (await session.execute(sa.select(outbox.c.event_id).where(outbox.c.event_id.in_(ids)))).scalars()
            )

    async with running(runtime, subscribers=False):
        async with runtime.uow.begin() as work:
            assert await store.record_requested(work.session, request, at=clock.now)
        timeout = timedelta(seconds=30)
        async with runtime.uow.single_statement() as work:
            [first] = await store.claim_ready(work.session, now=clock.now, limit=10, sending_timeout=timeout)
        clock.now += timedelta(seconds=31)  # cut off: reclaimed as attempt 2
        async with runtime.uow.single_statement() as work:
            [second] = await store.claim_ready(work.session, now=clock.now, limit=10, sending_timeout=timeout)
        assert (first.attempt, second.attempt, second.interrupted) == (1, 2, True)

        assert await finish(1) == set(), "attempt 1 is no longer the current one"
        assert await in_outbox() == []
        assert await finish(2) == {request.payload.notification_id}
        assert await in_outbox() == [announcements[2].event_id]
    recorded = await row(runtime, request.payload.notification_id)
    assert (recorded.status, recorded.provider_message_id) == ("sent", "<m2@safeguard.local>")
