"""Routing's handlers over the in-memory fakes: triage, acknowledgement and a due deadline, in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.routing.handlers import (
    Routing,
    on_concern_received,
    on_concerns_received,
    on_deadline_due,
    on_notification_acknowledged,
)
from services.routing.policy.load import load_policy
from services.routing.policy_book import PolicyBook
from shared.contracts.envelope import Actor
from shared.contracts.events import NotificationAcknowledged, NotificationAcknowledgedPayload, NotificationRequested
from tests.support.factories import concern_received
from tests.support.fakes import FakeCaseEvents, FakeDeadlines, FakePolicyVersions, fake_work
from tests.unit.routing.conftest import ST_MARKS

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday in term


@pytest.fixture
async def routing() -> Routing:
    """Routing over fakes, with St Mark's policy adopted."""
    deadlines = FakeDeadlines()
    book = PolicyBook(FakePolicyVersions())
    await book.adopt(load_policy(ST_MARKS), session=fake_work().session, deadlines=deadlines, now=NOW)
    return Routing(policies=book, case_events=FakeCaseEvents(deadlines), deadlines=deadlines, clock=lambda: NOW)


def types(events: list) -> list[str]:
    return [event.type for event in events]


async def test_a_concern_opens_a_triaged_case_requests_notifications_and_sets_its_deadlines(routing: Routing) -> None:
    concern = concern_received()
    events = await on_concern_received(concern, work=fake_work(), routing=routing)
    assert types(events)[:2] == ["case.opened", "case.triaged"]
    assert "notification.requested" in types(events) and "deadline.set" in types(events)
    case_events = routing.case_events
    assert isinstance(case_events, FakeCaseEvents)
    [(case_id, stream)] = case_events.streams.items()
    assert [e.type for e in stream] == ["case.opened", "case.triaged"]
    assert case_events.cases[case_id]["reference"] == concern.payload.reference
    deadlines = routing.deadlines
    assert isinstance(deadlines, FakeDeadlines)
    set_ids = {e.payload.deadline_id for e in events if e.type == "deadline.set"}
    assert set_ids <= set(deadlines.rows) and all(deadlines.status(i) == "pending" for i in set_ids)
    assert all(e.causation_id == concern.event_id for e in events if e.type == "case.opened")


async def test_an_acknowledgement_records_who_and_stops_the_escalation(routing: Routing) -> None:
    events = await on_concern_received(concern_received(), work=fake_work(), routing=routing)
    request = next(e for e in events if isinstance(e, NotificationRequested))
    acknowledged = NotificationAcknowledged.new(
        NotificationAcknowledgedPayload(
            notification_id=request.payload.notification_id,
            case_id=request.payload.case_id,
            acknowledged_by=request.payload.recipient.person_id,
        ),
        school_id="st-marks",
        aggregate_id=request.payload.notification_id,
        actor=Actor(id=request.payload.recipient.person_id, role="recipient"),
        occurred_at=NOW,
        cause=request,
    )
    recorded = await on_notification_acknowledged(acknowledged, work=fake_work(), routing=routing)
    assert types(recorded) == ["case.acknowledged"]
    assert await on_notification_acknowledged(acknowledged, work=fake_work(), routing=routing) == []
    deadlines = routing.deadlines
    assert isinstance(deadlines, FakeDeadlines)
    kinds = {row.due.kind: row.status for row in deadlines.rows.values() if row.due.case_id == request.payload.case_id}
    assert kinds["acknowledge"] == "cancelled"


async def test_an_unacknowledged_case_escalates_to_the_next_rung_when_its_deadline_is_due(routing: Routing) -> None:
    await on_concern_received(concern_received(), work=fake_work(), routing=routing)
    later = NOW + timedelta(days=3650)  # long after the concern, whenever the factory dated it
    due = [d for d in await routing.deadlines.claim_due(fake_work().session, now=later) if d.kind == "acknowledge"]
    assert due, "the acknowledgement deadline has passed"
    escalation = await on_deadline_due(due[0], session=fake_work().session, routing=routing)
    assert escalation[0].type == "deadline.reached" and escalation[0].payload.outcome == "escalated"
    assert "case.escalated" in types(escalation) and "notification.requested" in types(escalation)
    case_events = routing.case_events
    assert isinstance(case_events, FakeCaseEvents)
    [stream] = case_events.streams.values()
    assert [e.type for e in stream][-1] == "case.escalated"


async def test_a_batch_of_concerns_opens_each_case_and_sets_each_deadline_with_their_own_events(
    routing: Routing,
) -> None:
    concerns = [concern_received(), concern_received()]
    work = fake_work()
    await on_concerns_received(concerns, work=work, routing=routing)
    case_events, deadlines = routing.case_events, routing.deadlines
    assert isinstance(case_events, FakeCaseEvents) and isinstance(deadlines, FakeDeadlines)
    assert len(case_events.streams) == 2 and len(case_events.cases) == 2
    for concern in concerns:
        own = [e for e in work.emitted if e.causation_id == concern.event_id]
        assert types(own)[:2] == ["case.opened", "case.triaged"]
        set_ids = {e.payload.deadline_id for e in own if e.type == "deadline.set"}
        assert set_ids and set_ids <= set(deadlines.rows)
    assert len(work.emitted) == len({e.event_id for e in work.emitted})
