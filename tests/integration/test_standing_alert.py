"""Never silent, against real NATS + PostgreSQL: when the ladder runs out the case raises a standing alert that
repeats to everyone on the ladder and the trust's safeguarding lead until someone acknowledges; a dead letter
reaches the school's DSL as a count, never as content."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.routing.app import RoutingService
from services.routing.store import deadlines
from shared.contracts.envelope import Actor
from shared.contracts.events import NotificationAcknowledged, NotificationAcknowledgedPayload
from shared.db import transaction
from shared.settings import Settings
from shared.subjects import Subjects
from tests.integration.test_timers import Clock, a_concern_for_the_dsl_alone, acknowledge_deadlines, start, stop
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def pending_alert(service: RoutingService, case_id: str) -> Any:

    async with transaction(service.runtime.sessions) as session:
        rows = await session.execute(
            sa.select(deadlines).where(deadlines.c.case_id == case_id, deadlines.c.kind == "unacknowledged_alert")
        )
        return [row for row in rows if row.status == "pending"]


async def test_the_ladder_run_out_raises_an_alert_that_repeats_until_someone_acknowledges(
    settings: Settings,
) -> None:
    clock = Clock()
    service = await start(settings.model_copy(update={"unacknowledged_alert_minutes": 10}), clock)
    try:
        async with jetstream(settings) as (_, js):
            concern = a_concern_for_the_dsl_alone()
            await publish_raw(js, settings, concern)
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            case_id = triaged.payload.case_id
            await eventually(lambda: acknowledge_deadlines(service, case_id), what="acknowledge deadline")
            for _ in range(5):  # DSL -> deputies -> headteacher -> nobody left
                rows = [r for r in await acknowledge_deadlines(service, case_id) if r.status == "pending"]
                if not rows:
                    break
                clock.now = max(clock.now, rows[0].due_at) + timedelta(seconds=1)
                await service.scheduler.fire_due()
            [first] = await eventually(lambda: stream_events(js, settings, "case.unacknowledged"), what="alert 1")
            clock.now += timedelta(minutes=10, seconds=1)
            assert await service.scheduler.fire_due() >= 1
            alerts = await eventually(
                lambda: stream_events(js, settings, "case.unacknowledged"),
                until=lambda found: len(found) == 2,
                what="alert 2",
            )
            ack = NotificationAcknowledged.new(
                NotificationAcknowledgedPayload(
                    notification_id="n-late", case_id=case_id, acknowledged_by="headteacher"
                ),
                school_id="st-marks",
                aggregate_id="n-late",
                actor=Actor(id="headteacher", role="recipient"),
                occurred_at=clock.now,
                cause=concern,
            )
            await publish_raw(js, settings, ack)
            await eventually(lambda: pending_alert(service, case_id), until=lambda rows: rows == [], what="cancelled")
            clock.now += timedelta(hours=2)
            await service.scheduler.fire_due()
            after_ack = await stream_events(js, settings, "case.unacknowledged")
            requested = await stream_events(js, settings, "notification.requested")
    finally:
        await stop(service)
    everyone = {r.person_id for r in first.payload.recipients}
    assert {"s-bird", "headteacher"} <= everyone, "the DSL and the top of the ladder"
    assert {"r-crane", "l-hammond"} <= everyone, "the deputies"
    trust_leads = {r.person_id for r in first.payload.recipients if r.role == "trust_safeguarding_lead"}
    assert trust_leads, "the trust's safeguarding lead"
    assert [a.payload.alert_number for a in alerts] == [1, 2] and len(after_ack) == 2, "stopped by the acknowledgement"
    assert first.payload.repeats_every_minutes == 10
    alert_requests = [e for e in requested if e.payload.reason.startswith("unacknowledged")]
    # Each alert tells everyone (unless quiet hours hold the non-urgent ones: then they wait in the due-table).
    assert {e.payload.recipient.person_id for e in alert_requests} <= everyone


async def test_a_dead_letter_tells_the_dsl_how_many_never_what(settings: Settings) -> None:
    clock = Clock()
    service = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            subject = Subjects.from_settings(settings).event(school_id="st-marks", event_type="concern.received")
            secret = b"{not json: Learner A said something private"
            await js.publish(subject, secret, headers={"Nats-Msg-Id": "garbage-1"})
            [parked] = await eventually(lambda: stream_events(js, settings, "ops.dead_lettered"), what="announced")
            told = await eventually(
                lambda: stream_events(js, settings, "notification.requested"),
                until=lambda found: any(e.payload.reason.startswith("ops:") for e in found),
                what="the DSL told",
            )
    finally:
        await stop(service)
    assert parked.payload.consumer == "routing-concerns" and parked.payload.original_type == "concern.received"
    ops = [e for e in told if e.payload.reason.startswith("ops:")]
    assert {e.payload.recipient.person_id for e in ops} == {"s-bird"}
    assert ops[0].payload.reference.startswith("1 set aside by routing-concerns")
    for event in [parked, *ops]:
        assert "Learner A" not in event.to_json().decode()
