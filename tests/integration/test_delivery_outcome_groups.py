"""A dispatcher round's outcomes against real PostgreSQL and NATS: a quick channel's outcome waits a moment for its
round's slower one, so both are recorded (and announced) by one statement; a channel slower than that moment does
not hold the others back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.notifications.channels import Delivery
from services.notifications.dispatcher import Dispatcher
from services.notifications.links import AckLinks
from services.notifications.store import SCHEMA, SqlDeliveries
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-dsl", name="Mx Example Lead", role="designated_safeguarding_lead")


class GroupCounting(SqlDeliveries):
    """Keeps the notification ids of each group of outcomes written (one statement each)."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    async def finish_all(self, session: Any, finished: Any, **options: Any) -> set[str]:
        self.groups.append([f.notification_id for f in finished])
        return await super().finish_all(session, finished, **options)


class Quick:
    name = "email"
    resend_safe = True

    async def send(self, delivery: Delivery) -> str:
        return f"<{delivery.notification_id}@safeguard.local>"


class Slow:
    """Answers `after` seconds into the send, or once `reply` is set."""

    name = "push"
    resend_safe = True

    def __init__(self, *, after: float | None = None) -> None:
        self.reply = asyncio.Event()
        self._after = after

    async def send(self, delivery: Delivery) -> str:
        if self._after is not None:
            await asyncio.sleep(self._after)
        else:
            await self.reply.wait()
        return f"push:{delivery.notification_id}"


def dispatcher(runtime: ServiceRuntime, store: SqlDeliveries, slow: Slow) -> Dispatcher:
    return Dispatcher(
        uow=runtime.uow,
        deliveries=store,
        channels={"email": Quick(), "push": slow},
        signer=AckLinks(b"test-key"),
        console_url="http://127.0.0.1:8081",
        clock=utc_now,
    )


async def record_both(runtime: ServiceRuntime) -> tuple[str, str]:
    email = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    push = notification_requested(channel="push", address=PERSON.person_id, recipient=PERSON)
    async with runtime.uow.begin() as work:
        recorded = await SqlDeliveries().record_all_requested(work.session, [email, push], at=utc_now())
        assert len(recorded.fresh) == 2
    return email.payload.notification_id, push.payload.notification_id


async def test_a_rounds_quick_and_slower_outcomes_are_recorded_by_one_statement(settings: Settings) -> None:
    runtime, store = ServiceRuntime(settings, service="notifications", schema=SCHEMA), GroupCounting()
    sender = dispatcher(runtime, store, Slow(after=0.005))  # a push service's few milliseconds
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        email_id, push_id = await record_both(runtime)
        assert await sender.dispatch_due() == 2
        sent = await eventually(
            lambda: stream_events(js, settings, "notification.sent"), until=lambda found: len(found) == 2, what="sent"
        )
    assert [sorted(group) for group in store.groups] == [sorted([email_id, push_id])]
    assert sorted(e.payload.notification_id for e in sent) == sorted([email_id, push_id])


async def test_a_channel_slower_than_the_moment_waited_does_not_hold_the_others_back(settings: Settings) -> None:
    runtime, store, slow = ServiceRuntime(settings, service="notifications", schema=SCHEMA), GroupCounting(), Slow()
    sender = dispatcher(runtime, store, slow)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        email_id, push_id = await record_both(runtime)
        round_ = asyncio.create_task(sender.dispatch_due())
        [announced] = await eventually(lambda: stream_events(js, settings, "notification.sent"), what="email sent")
        assert announced.payload.notification_id == email_id
        assert not round_.done(), "the push is still waiting for its reply"
        slow.reply.set()
        assert await round_ == 2
    assert store.groups == [[email_id], [push_id]]
