"""Consumers whose batch is one statement claim it in that statement: a redelivered event still changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from services.notifications.app import create_app as create_notifications
from services.notifications.store import deliveries
from services.routing.store import case_events, cases, deadlines
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import NOTIFICATIONS_REQUESTS, ROUTING_CONCERNS, ROUTING_FAILURES
from tests.integration.test_batches import dead_letters
from tests.integration.test_timers import Clock, a_concern_for_the_dsl_alone, start, stop
from tests.support.factories import concern_received, failure_of
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def rows(runtime: ServiceRuntime, query: Any) -> list[Any]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(query)).all())


async def drained(js: Any, settings: Settings, durable: str) -> None:
    await eventually(
        lambda: js.consumer_info(settings.stream_name, durable),
        until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
        what=f"{durable} drained",
    )


async def test_a_redelivered_concern_is_skipped_by_the_claim_in_triages_statement(settings: Settings) -> None:
    first, later = concern_received(), concern_received()
    async with jetstream(settings) as (_, js):
        service = await start(settings, Clock())
        runtime = service.runtime
        try:
            await publish_raw(js, settings, first)
            await eventually(lambda: rows(runtime, sa.select(cases.c.case_id)), what="the first case")
            await publish_raw(js, settings, first, msg_id=f"again-{first.event_id}")  # past the broker's dedupe
            await publish_raw(js, settings, later)
            await eventually(
                lambda: rows(runtime, sa.select(cases.c.case_id)), until=lambda found: len(found) == 2, what="cases"
            )
            await drained(js, settings, ROUTING_CONCERNS)
            inbox = await rows(runtime, sa.select(runtime.tables.inbox.c.event_id))
            written = await rows(runtime, sa.select(case_events.c.case_id, case_events.c.version))
            pending = await rows(runtime, sa.select(deadlines.c.deadline_id))
            triaged = await stream_events(js, settings, "case.triaged")
        finally:
            await stop(service)
        assert not await dead_letters(settings)  # the redelivery was skipped, not failed against the case's events
    assert sorted(row.event_id for row in inbox) == sorted([first.event_id, later.event_id])
    assert len({case_id for case_id, _ in written}) == 2
    assert pending and len({row.deadline_id for row in pending}) == len(pending)
    assert sorted(t.payload.reference for t in triaged) == sorted([first.payload.reference, later.payload.reference])


async def test_a_redelivered_request_is_recorded_once_by_its_notification_id_with_no_inbox_row(
    settings: Settings,
) -> None:
    """The deliveries are notifications' inbox: the request statement claims the batch with the delivery's key."""
    from tests.integration.test_notifications import request

    cause = concern_received()
    requested = request(notification_id=str(uuid.uuid4()), cause=cause)
    _app, runtime = create_notifications(settings)
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, requested)
        await publish_raw(js, settings, requested, msg_id=f"again-{requested.event_id}")
        await eventually(lambda: stream_events(js, settings, "notification.sent"), what="notification.sent")
        await drained(js, settings, NOTIFICATIONS_REQUESTS)
        inbox = await rows(runtime, sa.select(runtime.tables.inbox.c.consumer, runtime.tables.inbox.c.event_id))
        recorded = await rows(runtime, sa.select(deliveries.c.notification_id, deliveries.c.attempts))
        sent = await stream_events(js, settings, "notification.sent")
    assert inbox == [], "no inbox row: the delivery's notification id is the claim"
    assert recorded == [(requested.payload.notification_id, 1)]
    assert len(sent) == 1


async def test_a_redelivered_failure_is_skipped_by_the_claim_in_the_statement_recording_it(settings: Settings) -> None:
    service = await start(settings, Clock())
    try:
        async with jetstream(settings) as (_, js):
            await publish_raw(js, settings, a_concern_for_the_dsl_alone())
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            dsl = triaged.payload.recipients[0].person_id
            requests = await stream_events(js, settings, "notification.requested")
            failures = [failure_of(r) for r in requests if r.payload.recipient.person_id == dsl]  # all triage asked
            for failure in failures:
                await publish_raw(js, settings, failure)
            await drained(js, settings, ROUTING_FAILURES)
            for failure in failures:  # redelivered, in a batch of their own (new message ids: past broker dedupe)
                await publish_raw(js, settings, failure, msg_id=f"again-{failure.event_id}")
            await drained(js, settings, ROUTING_FAILURES)
            fallback = await eventually(
                lambda: stream_events(js, settings, "notification.requested"),
                until=lambda found: any(r.payload.reason.startswith("fallback") for r in found),
                what="the fallback",
            )
            caused = [r for r in fallback if r.payload.reason.startswith("fallback")]
            inbox = await rows(service.runtime, sa.select(service.runtime.tables.inbox.c.event_id))
    finally:
        await stop(service)
    assert len(caused) == 1  # the fallback to the DSL's last channel, asked for once
    claimed = [row.event_id for row in inbox]
    assert all(claimed.count(failure.event_id) == 1 for failure in failures)
