"""The dispatcher against real PostgreSQL: a delivery requested while an earlier one is still being sent is claimed
and sent at once, not after it, and the dispatcher never reclaims its own attempt still under way."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from services.notifications.channels import Delivery
from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.links import AckLinks
from services.notifications.store import SCHEMA, SqlDeliveries
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.running import running

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-dsl", name="Mx Example Lead", role="designated_safeguarding_lead")


class Held:
    """A channel whose sends wait until `reply` is set; `calls` counts them, `began` is set by the first."""

    resend_safe = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []
        self.began = asyncio.Event()
        self.reply = asyncio.Event()

    async def send(self, delivery: Delivery) -> str:
        self.calls.append(delivery.notification_id)
        self.began.set()
        await self.reply.wait()
        return f"{self.name}:{delivery.notification_id}"


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


def dispatcher(
    runtime: ServiceRuntime, clock: Clock, channels: dict[str, Held], rules: DeliveryRules = DeliveryRules()
) -> Dispatcher:
    return Dispatcher(
        uow=runtime.uow,
        deliveries=SqlDeliveries(),
        channels=channels,
        signer=AckLinks(b"test-key"),
        console_url="http://127.0.0.1:8081",
        clock=clock,
        rules=rules,
        poll_seconds=60,  # only the wake-ups make it look
    )


async def request(runtime: ServiceRuntime, channel: str, clock: Clock) -> str:
    made = notification_requested(channel=channel, address="lead@example.org", recipient=PERSON)
    async with runtime.uow.begin() as work:
        assert await SqlDeliveries().record_requested(work.session, made, at=clock())
    return made.payload.notification_id


async def test_a_delivery_requested_during_a_slow_send_is_sent_without_waiting_for_it(settings: Settings) -> None:
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    slow, quick = Held("push"), Held("email")
    quick.reply.set()
    sender = dispatcher(runtime, clock, {"push": slow, "email": quick})
    async with running(runtime, subscribers=False):
        await request(runtime, "push", clock)
        sender.start()
        try:
            async with asyncio.timeout(10):
                await slow.began.wait()
                email_id = await request(runtime, "email", clock)
                sender.wake()
                await quick.began.wait()
            assert quick.calls == [email_id], "sent while the push still waits for its reply"
            assert not slow.reply.is_set()
        finally:
            slow.reply.set()
            await sender.stop()


async def test_an_attempt_still_under_way_past_the_sending_timeout_is_not_reclaimed_by_its_own_dispatcher(
    settings: Settings,
) -> None:
    runtime, clock, slow = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock(), Held("push")
    sender = dispatcher(runtime, clock, {"push": slow}, DeliveryRules(sending_timeout=timedelta(seconds=3)))
    async with running(runtime, subscribers=False):
        push_id = await request(runtime, "push", clock)
        sender.start()
        try:
            async with asyncio.timeout(10):
                await slow.began.wait()
            clock.now += timedelta(seconds=10)  # long past the sending timeout, the send still under way
            sender.wake()
            await asyncio.sleep(0.3)
            assert slow.calls == [push_id], "not claimed and sent a second time while its attempt is under way"
        finally:
            slow.reply.set()
            await sender.stop()
