"""Durable escalation against real NATS + PostgreSQL, with routing's clock in the test's hands.

Nobody acknowledges -> at the deadline the deputies are told; routing restarted in between, and two instances
polling the due-table, still give exactly one escalation. An acknowledgement stops it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from services.routing.app import RoutingService
from services.routing.store import deadlines
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import POLICY_REVIEW_DUE, NotificationAcknowledged, NotificationAcknowledgedPayload
from shared.db import transaction
from shared.settings import Settings
from shared.tracing import trace_id_of
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def this_morning() -> datetime:
    """09:00 today in London: the tests' school day, clear of St Mark's quiet hours (21:00-07:00) whenever they run.

    Routing holds a non-urgent message asked for in quiet hours, so a clock read off the wall would make these
    tests pass by day and fail by night."""
    london = ZoneInfo("Europe/London")
    return datetime.combine(utc_now().astimezone(london).date(), time(9), tzinfo=london).astimezone(UTC)


class Clock:
    """A clock the test moves forward, from 09:00 today (see `this_morning`)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or this_morning()

    def __call__(self) -> datetime:
        return self.now


async def start(settings: Settings, clock: Clock) -> RoutingService:
    service = RoutingService(settings, clock=clock)
    await service.start()
    await service.runtime.broker.start()
    return service


async def stop(service: RoutingService) -> None:
    await service.runtime.broker.stop()
    await service.stop()


async def acknowledge_deadlines(service: RoutingService, case_id: str) -> list:
    async with transaction(service.runtime.sessions) as session:
        rows = await session.execute(
            sa.select(deadlines)
            .where(deadlines.c.case_id == case_id, deadlines.c.kind == "acknowledge")
            .order_by(deadlines.c.due_at)
        )
        return list(rows)


def a_concern_for_the_dsl_alone():
    # Not immediate risk, so at triage only the DSL is told; the deputies are the next rung.
    return concern_received(kind="online_bullying", immediate_risk="no")


async def test_no_acknowledgement_escalates_to_the_deputies_exactly_once_across_a_restart(settings: Settings) -> None:
    clock = Clock()
    first = await start(settings, clock)
    concern = a_concern_for_the_dsl_alone()
    async with jetstream(settings) as (_, js):
        await publish_raw(js, settings, concern)
        [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
        case_id = triaged.payload.case_id
        [pending] = await eventually(lambda: acknowledge_deadlines(first, case_id), what="acknowledge deadline")
        told_first = {r.person_id for r in triaged.payload.recipients}
        await stop(first)  # routing goes down with the deadline pending

        clock.now = pending.due_at + timedelta(seconds=1)
        second, third = await start(settings, clock), await start(settings, clock)  # restarted, and scaled out
        try:
            [escalated] = await eventually(lambda: stream_events(js, settings, "case.escalated"), what="escalation")
            assert await second.scheduler.fire_due() == 0 and await third.scheduler.fire_due() == 0
            await eventually(
                lambda: stream_events(js, settings, "deadline.reached"),
                until=lambda found: any(e.payload.kind == "acknowledge" for e in found),
                what="reached",
            )
            rows = await acknowledge_deadlines(second, case_id)
        finally:
            await stop(second)
            await stop(third)
        assert len(await stream_events(js, settings, "case.escalated")) == 1
        requested = [
            e for e in await stream_events(js, settings, "notification.requested") if e.payload.case_id == case_id
        ]
    deputies = {r.person_id for r in escalated.payload.recipients}
    assert escalated.payload.to_rung == 1
    assert {r.role for r in escalated.payload.recipients} == {"deputy_designated_safeguarding_lead"}
    assert deputies and not deputies & told_first
    assert {e.payload.recipient.person_id for e in requested if e.payload.escalation_rung == 1} == deputies
    assert [(r.status, r.detail["rung"]) for r in rows] == [("fired", 0), ("pending", 1)]
    assert escalated.correlation_id == concern.event_id
    assert trace_id_of(escalated.traceparent) == trace_id_of(concern.traceparent), "the concern's trace"


async def test_an_acknowledgement_stops_the_escalation(settings: Settings) -> None:
    clock = Clock()
    service = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            concern = a_concern_for_the_dsl_alone()
            await publish_raw(js, settings, concern)
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            case_id = triaged.payload.case_id
            [pending] = await eventually(lambda: acknowledge_deadlines(service, case_id), what="deadline")
            dsl = triaged.payload.recipients[0]
            ack = NotificationAcknowledged.new(
                NotificationAcknowledgedPayload(notification_id="n-1", case_id=case_id, acknowledged_by=dsl.person_id),
                school_id="st-marks",
                aggregate_id="n-1",
                actor=Actor(id=dsl.person_id, role="recipient"),
                occurred_at=clock.now,
                cause=concern,
            )
            await publish_raw(js, settings, ack)
            await eventually(
                lambda: acknowledge_deadlines(service, case_id),
                until=lambda rows: rows[0].status == "cancelled",
                what="deadline cancelled",
            )
            clock.now = pending.due_at + timedelta(hours=1)
            await service.scheduler.fire_due()
            assert [
                e for e in await stream_events(js, settings, "deadline.reached") if e.payload.kind == "acknowledge"
            ] == []
            assert await stream_events(js, settings, "case.escalated") == []
            [acknowledged] = await eventually(lambda: stream_events(js, settings, "case.acknowledged"), what="case ack")
            await publish_raw(js, settings, ack, msg_id="delivered-again")  # a redelivery records nothing new
            await eventually(
                lambda: js.consumer_info(settings.stream_name, "routing-acknowledgements"),
                until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
                what="drained",
            )
            assert len(await stream_events(js, settings, "case.acknowledged")) == 1
    finally:
        await stop(service)
    assert acknowledged.payload.case_id == case_id and acknowledged.payload.acknowledged_by == dsl.person_id


async def test_a_lado_consideration_deadline_reminds_the_people_told(settings: Settings) -> None:
    clock = Clock()
    service = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            concern = concern_received(
                kind="staff_personal_account_contact",
                people=[
                    {"role": "staff", "involvement": "subject", "name": "A Teaching Assistant"},
                    {"role": "learner", "involvement": "victim", "age": 11},
                ],
            )
            await publish_raw(js, settings, concern)
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            lado = next(d for d in triaged.payload.deadlines if d.kind == "consider_lado_referral")
            told = {r.person_id for r in triaged.payload.recipients}
            clock.now = lado.due_at + timedelta(minutes=1)
            await eventually(
                lambda: stream_events(js, settings, "deadline.reached"),
                until=lambda found: any(e.payload.kind == "consider_lado_referral" for e in found),
                what="LADO deadline reached",
            )
            reached = [
                e
                for e in await stream_events(js, settings, "deadline.reached")
                if e.payload.kind == "consider_lado_referral"
            ]
            reminders = [
                e
                for e in await stream_events(js, settings, "notification.requested")
                if e.payload.reason.startswith("reminder: ")
            ]
    finally:
        await stop(service)
    assert triaged.payload.category == "allegation_against_staff"
    assert [e.payload.outcome for e in reached] == ["reminded"]
    assert {e.payload.recipient.person_id for e in reminders} == told
    assert all("LADO" in e.payload.reason for e in reminders)


async def test_an_overdue_policy_review_reminds_the_headteacher_and_named_governor_once(settings: Settings) -> None:
    clock = Clock()
    first = await start(settings, clock)
    async with jetstream(settings) as (_, js):
        [due] = await eventually(lambda: stream_events(js, settings, "policy.review_due"), what="review reminder")
        await stop(first)
        second = await start(settings, clock)  # a restart adopts the same policy again: no new reminder
        try:
            assert await second.scheduler.fire_due() == 0
            assert len(await stream_events(js, settings, "policy.adopted")) == 1
            assert len(await stream_events(js, settings, "policy.review_due")) == 1
        finally:
            await stop(second)
        reminders = [
            e
            for e in await stream_events(js, settings, "notification.requested")
            if e.payload.reason == POLICY_REVIEW_DUE
        ]
    assert due.payload.review_due == "2022-10-31"
    assert {r.role for r in due.payload.recipients} == {"headteacher", "named_governor"}
    # Its own kind of message, in every channel: not headed like a concern.
    assert reminders and {e.payload.reference for e in reminders} == {"Social Media Policy v1, due 31 Oct 2022"}


async def test_an_acknowledgement_for_an_unknown_case_is_recorded_nowhere_and_not_dead_lettered(
    settings: Settings,
) -> None:
    service = await start(settings, Clock())
    try:
        async with jetstream(settings) as (_, js):
            stray = NotificationAcknowledged.new(
                NotificationAcknowledgedPayload(
                    notification_id="n-x", case_id="no-such-case", acknowledged_by="s-bird"
                ),
                school_id="st-marks",
                aggregate_id="n-x",
                actor=Actor(id="s-bird", role="recipient"),
                occurred_at=utc_now(),
                cause=concern_received(),
            )
            await publish_raw(js, settings, stray)
            info = await eventually(
                lambda: js.consumer_info(settings.stream_name, "routing-acknowledgements"),
                until=lambda info: (
                    info.delivered.stream_seq > 0 and info.num_pending == 0 and info.num_ack_pending == 0
                ),
                what="the acknowledgement consumed",
            )
            dead = await js.stream_info(f"{settings.stream_name}_DEAD")
    finally:
        await stop(service)
    assert info.num_redelivered == 0 and dead.state.messages == 0
