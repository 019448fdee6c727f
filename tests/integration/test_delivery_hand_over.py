"""A request's own statement claims its delivery and hands it to the dispatcher, against real PostgreSQL: the channel
is called with no claim statement in between, never twice, never beyond the dispatcher's room, and never for a
statement that failed; a delivery claimed but never handed over (a crash) is recovered as any cut-off attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from services.notifications import dispatcher as dispatcher_module
from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.handlers import on_notifications_requested
from services.notifications.links import AckLinks
from services.notifications.store import SCHEMA, SqlDeliveries, deliveries
from shared.consumer import EventBatches, every_batch
from shared.contracts.events import NotificationRequested, PersonRef
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import NOTIFICATIONS_REQUESTS
from tests.integration.test_delivery_overlap import Clock, Held
from tests.support.factories import notification_requested
from tests.support.running import running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-dsl", name="Mx Example Lead", role="designated_safeguarding_lead")
TIMEOUT = timedelta(seconds=30)


def replying_at_once() -> Held:
    """An email channel whose sends return at once."""
    channel = Held("email")
    channel.reply.set()
    return channel


class Service:
    """The notifications consumer edge, its handler and a dispatcher, as app.py wires them (no broker)."""

    def __init__(self, settings: Settings, channel: Held) -> None:
        self.runtime = ServiceRuntime(settings, service="notifications", schema=SCHEMA)
        self.clock = Clock()
        self.channel = channel
        self.dispatcher = Dispatcher(
            uow=self.runtime.uow,
            deliveries=SqlDeliveries(),
            channels={channel.name: channel},
            signer=AckLinks(b"test-key"),
            console_url="http://127.0.0.1:8081",
            clock=self.clock,
            rules=DeliveryRules(sending_timeout=TIMEOUT),
            poll_seconds=60,  # only the wake-ups make it look
        )
        record = partial(
            on_notifications_requested, deliveries=SqlDeliveries(), clock=self.clock, dispatcher=self.dispatcher
        )
        self.edge: EventBatches = self.runtime.consumer(
            NotificationRequested, durable=NOTIFICATIONS_REQUESTS, batch_handler=record, claims_in_statement=every_batch
        )
        self.statements: list[str] = []
        sa.event.listen(self.runtime.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def request(self, *, person: PersonRef = PERSON) -> NotificationRequested:
        return notification_requested(channel=self.channel.name, address="lead@example.org", recipient=person)

    async def rows(self) -> dict[str, Any]:
        async with self.runtime.sessions() as session:
            return {row.notification_id: row for row in (await session.execute(sa.select(deliveries))).all()}

    async def statuses(self) -> list[str]:
        return sorted(row.status for row in (await self.rows()).values())

    async def all_sent(self, count: int) -> None:
        await eventually(self.statuses, until=lambda found: found == ["sent"] * count, what=f"{count} sent")


def claims(statements: list[str]) -> list[str]:
    return [s for s in statements if "skip locked" in s]


def on_deliveries(statements: list[str]) -> list[str]:
    """The service's statements on the deliveries (not the test's own reads, `Service.rows`)."""
    return [s for s in statements if f"{SCHEMA}.deliveries" in s and not s.startswith("SELECT")]


@contextmanager
def started(service: Service) -> Iterator[None]:
    service.dispatcher.start()
    try:
        yield
    finally:
        service.channel.reply.set()


async def test_a_request_is_sent_with_no_claim_statement_and_one_statement_for_its_outcome(settings: Settings) -> None:
    quick = replying_at_once()
    service = Service(settings, quick)
    async with running(service.runtime, subscribers=False):
        with started(service):
            await eventually(lambda: asyncio.sleep(0, claims(service.statements)), what="the start-up claim")
            before = len(service.statements)
            requested = service.request()
            assert await service.edge.process([requested]) == 1
            await service.all_sent(1)
            after = service.statements[before:]
        await service.dispatcher.stop()
    assert quick.calls == [requested.payload.notification_id]
    assert claims(after) == [], "the dispatcher did not claim what the request's statement had claimed"
    recorded, finished = on_deliveries(after)  # the request's statement, then its outcome's: nothing between
    assert recorded.startswith("insert into notifications.deliveries")
    assert "update" in finished and "outbox" in finished
    row = (await service.rows())[requested.payload.notification_id]
    assert (row.status, row.attempts) == ("sent", 1)


async def test_the_request_statement_leaves_a_row_exactly_as_the_dispatchers_claim_would(settings: Settings) -> None:
    service, store = Service(settings, Held("email")), SqlDeliveries()
    by_statement, by_claim = service.request(), service.request()
    now = service.clock.now
    async with running(service.runtime, subscribers=False):
        async with service.runtime.uow.single_statement() as work:
            recorded = await store.record_all_requested(
                work.session, [by_statement], at=now, claiming=1, sending_timeout=TIMEOUT
            )
        async with service.runtime.uow.single_statement() as work:
            await store.record_all_requested(work.session, [by_claim], at=now)
            [claimed] = await store.claim_ready(work.session, now=now, limit=1, sending_timeout=TIMEOUT)
        rows = await service.rows()
    [handed] = recorded.claimed
    assert (handed.attempt, handed.interrupted, handed.past_commit_point) == (1, False, False)
    assert (claimed.attempt, claimed.interrupted, claimed.past_commit_point) == (1, False, False)
    assert handed.request == by_statement
    columns = ("status", "attempts", "attempted_at", "ready_at", "detail")
    written = rows[by_statement.payload.notification_id]
    expected = rows[by_claim.payload.notification_id]
    assert [getattr(written, c) for c in columns] == [getattr(expected, c) for c in columns]
    assert (written.status, written.ready_at) == ("sending", now + TIMEOUT)


async def test_a_request_redelivered_after_its_hand_over_sends_nothing_twice(settings: Settings) -> None:
    held = Held("email")
    service = Service(settings, held)
    requested = service.request()
    async with running(service.runtime, subscribers=False):
        with started(service):
            assert await service.edge.process([requested]) == 1
            async with asyncio.timeout(10):
                await held.began.wait()  # handed over, its send under way
            before = len(service.statements)
            assert await service.edge.process([requested, requested]) == 1  # redelivered twice in one batch
            assert len(on_deliveries(service.statements[before:])) == 1, "one statement, which changes nothing"
            held.reply.set()
            await service.all_sent(1)
            await service.edge.process([requested])  # and once more after its outcome
            assert await service.dispatcher.dispatch_due() == 0
        await service.dispatcher.stop()
    assert held.calls == [requested.payload.notification_id]
    assert (await service.rows())[requested.payload.notification_id].attempts == 1


async def test_a_request_claimed_but_never_handed_over_is_recovered_after_the_sending_timeout(
    settings: Settings,
) -> None:
    quick = replying_at_once()  # resend_safe, as Web Push is: the recovery re-sends it
    service = Service(settings, quick)
    requested = service.request()
    async with running(service.runtime, subscribers=False):
        # The handler's statement, claiming for sending; then a crash before its hand-over (nothing begins).
        async with service.runtime.uow.single_statement() as work:
            recorded = await SqlDeliveries().record_all_requested(
                work.session, [requested], at=service.clock.now, claiming=1, sending_timeout=TIMEOUT
            )
        assert len(recorded.claimed) == 1 and await service.statuses() == ["sending"]
        # Restarted (the dispatcher was never started: nothing was handed to it), it claims only what is due.
        assert await service.dispatcher.dispatch_due() == 0, "its attempt may still be under way"
        service.clock.now += TIMEOUT + timedelta(seconds=1)
        assert await service.dispatcher.dispatch_due() == 1
    row = (await service.rows())[requested.payload.notification_id]
    assert (row.status, row.attempts) == ("sent", 2)
    assert quick.calls == [requested.payload.notification_id]


async def test_requests_beyond_the_dispatchers_room_stay_requested_for_its_own_claim(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher_module, "CLAIM_LIMIT", 3)
    held = Held("email")
    service = Service(settings, held)
    first, batch = service.request(), [service.request() for _ in range(3)]
    async with running(service.runtime, subscribers=False):
        with started(service):
            await service.edge.process([first])
            async with asyncio.timeout(10):
                await held.began.wait()  # one attempt under way: room for two more
            before = len(service.statements)
            await service.edge.process(batch)
            handed = await eventually(lambda: asyncio.sleep(0, list(held.calls)), until=lambda c: len(c) == 3)
            assert await service.statuses() == ["requested", "sending", "sending", "sending"]
            assert handed[1:] == [r.payload.notification_id for r in batch[:2]], "first come first"
            held.reply.set()
            await service.all_sent(4)
            after = service.statements[before:]
        await service.dispatcher.stop()
    assert sorted(held.calls) == sorted(r.payload.notification_id for r in [first, *batch])
    assert len(claims(after)) >= 1, "the one left requested was claimed by the dispatcher"


async def test_a_batch_whose_statement_fails_hands_nothing_over_and_its_events_alone_are_sent_once(
    settings: Settings,
) -> None:
    quick = replying_at_once()
    service = Service(settings, quick)
    good = service.request()
    poison = service.request(person=PersonRef(person_id="p-\x00", name="Mx Null", role="designated_safeguarding_lead"))
    async with running(service.runtime, subscribers=False):
        with started(service):
            with pytest.raises(sa.exc.DBAPIError):
                await service.edge.process([good, poison])
            assert quick.calls == [] and await service.rows() == {}
            with service.dispatcher.handing_over(200) as hand_over:
                assert hand_over.room == dispatcher_module.CLAIM_LIMIT, "the failed batch's room was given back"
            assert await service.edge.process([good]) == 1  # as the consumer edge retries each event alone
            with pytest.raises(sa.exc.DBAPIError):
                await service.edge.process([poison])
            await service.all_sent(1)
        await service.dispatcher.stop()
    assert quick.calls == [good.payload.notification_id]


async def test_a_request_recorded_inside_a_transaction_block_is_claimed_by_the_dispatcher_after_commit(
    settings: Settings,
) -> None:
    quick = replying_at_once()
    service = Service(settings, quick)
    requested = service.request()
    async with running(service.runtime, subscribers=False):
        with started(service):
            await eventually(lambda: asyncio.sleep(0, claims(service.statements)), what="the start-up claim")
            before = len(service.statements)
            async with service.runtime.uow.begin() as work:
                assert not work.autocommit
                await on_notifications_requested(
                    [requested],
                    work=work,
                    deliveries=SqlDeliveries(),
                    clock=service.clock,
                    dispatcher=service.dispatcher,
                )
                assert quick.calls == [], "nothing begins before the commit"
            await service.all_sent(1)
            after = service.statements[before:]
        await service.dispatcher.stop()
    assert quick.calls == [requested.payload.notification_id]
    assert len(claims(after)) == 1
