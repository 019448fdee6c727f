"""Debrief actions reminded until done, over the in-memory fakes: timers set, fired, repeated, cancelled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.case_cli import debrief_action
from services.routing.case import parse_command
from services.routing.case_command_edge import record_command
from services.routing.debrief_listing import adopted_after, open_actions, policy_links
from services.routing.debrief_reminders import DEBRIEF_ACTION, first_reminder_at, next_reminder_at
from services.routing.handlers import Routing, on_deadline_due
from services.routing.policy.load import load_policy
from services.routing.policy_book import PolicyBook
from services.routing.store import DueDeadline
from shared.contracts.case_events import DEBRIEF_ACTION_DUE, DebriefActionDue
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import DeadlineReached, DeadlineSet, NotificationRequested
from tests.support.fakes import FakeCaseEvents, FakeDeadlines, FakePolicyVersions, fake_work
from tests.unit.routing.conftest import ST_MARKS
from tests.unit.routing_case.cases import DSL, opening_events

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EVERY = timedelta(days=7)
ACTIONS = [
    {
        "action_id": "brief-tutors",
        "description": "Brief tutors on Learner A's case",
        "owner": "r-crane",
        "due_on": "2026-03-10",
    },
    {"action_id": "update-pshe", "description": "Update the PSHE unit", "owner": "left-school", "due_on": "2026-04-01"},
]


@pytest.fixture
async def routing() -> Routing:
    deadlines = FakeDeadlines()
    book = PolicyBook(FakePolicyVersions())
    await book.adopt(load_policy(ST_MARKS), session=fake_work().session, deadlines=deadlines, now=NOW)
    return Routing(
        policies=book,
        case_events=FakeCaseEvents(deadlines),
        deadlines=deadlines,
        clock=lambda: NOW,
        debrief_every=EVERY,
    )


async def ask(routing: Routing, case_id: str, name: str, *, by: Actor = DSL, **fields: Any) -> list[Event[Any]]:
    command = parse_command(
        {"command": name, "case_id": case_id, "school_id": "st-marks", "actor": by.model_dump(), **fields}
    )
    _, events = await record_command(
        fake_work().session, command, case_events=routing.case_events, deadlines=routing.deadlines, now=NOW
    )
    return events


async def debriefed_case(routing: Routing) -> tuple[str, list[Event[Any]]]:
    """A closed, investigated case with a debrief of two actions; returns its id and the debrief's events."""
    events = opening_events(at=NOW - timedelta(days=30))
    case_id = events[0].payload.case_id
    await routing.case_events.append(fake_work().session, case_id=case_id, events=events, expected_version=0)
    await ask(routing, case_id, "record_decision", kind="not_refer", decision="No referral", reasons="Threshold")
    await ask(routing, case_id, "record_outcome", outcome="resolved_in_school", summary="Support in place")
    await ask(routing, case_id, "complete_investigation", summary="Statements reviewed")
    await ask(routing, case_id, "close", summary="Closed")
    recorded = await ask(
        routing, case_id, "record_debrief", lessons_learnt="Tutors did not know the route", actions=ACTIONS
    )
    return case_id, recorded


async def fire(routing: Routing, due: DueDeadline) -> list[Event[Any]]:
    """What the scheduler does with a due row: act on it and mark it fired."""
    events = await on_deadline_due(due, session=fake_work().session, routing=routing)
    await routing.deadlines.close(fake_work().session, deadline_id=due.deadline_id, status="fired", at=NOW)
    return events


def timer_rows(routing: Routing, *, status: str = "pending") -> list[DueDeadline]:
    deadlines = routing.deadlines
    assert isinstance(deadlines, FakeDeadlines)
    return sorted(
        (r.due for r in deadlines.rows.values() if r.due.kind == DEBRIEF_ACTION and r.status == status),
        key=lambda due: (due.detail["action_id"], due.detail["reminder_number"]),
    )


def test_the_first_reminder_is_at_nine_in_the_morning_school_time_on_the_due_date() -> None:
    assert first_reminder_at(date(2026, 7, 1), timezone="Europe/London") == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert first_reminder_at(date(2026, 1, 5), timezone="Europe/London") == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_repeat_keeps_its_interval_unless_routing_was_down_past_it() -> None:
    due = datetime(2026, 3, 10, 9, tzinfo=UTC)
    assert next_reminder_at(due, every=EVERY, now=due + timedelta(minutes=1)) == due + EVERY
    late = due + timedelta(days=20)
    assert next_reminder_at(due, every=EVERY, now=late) == late + EVERY


async def test_recording_a_debrief_sets_one_timer_per_action(routing: Routing) -> None:
    _, recorded = await debriefed_case(routing)
    timers = [e for e in recorded if isinstance(e, DeadlineSet)]
    assert [e.type for e in recorded] == ["case.debrief_recorded", "deadline.set", "deadline.set"]
    rows = timer_rows(routing)
    assert [(r.detail["action_id"], r.detail["reminder_number"]) for r in rows] == [
        ("brief-tutors", 1),
        ("update-pshe", 1),
    ]
    assert {r.deadline_id for r in rows} == {t.payload.deadline_id for t in timers}
    assert rows[0].due_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def test_a_due_action_reminds_its_owner_and_sets_the_next_reminder(routing: Routing) -> None:
    case_id, _ = await debriefed_case(routing)
    [first, _] = timer_rows(routing)
    events = await fire(routing, first)
    [reached] = [e for e in events if isinstance(e, DeadlineReached)]
    [due] = [e for e in events if isinstance(e, DebriefActionDue)]
    requests = [e for e in events if isinstance(e, NotificationRequested)]
    assert reached.payload.outcome == "reminded"
    assert (due.payload.action_id, due.payload.owner_id, due.payload.reminder_number) == ("brief-tutors", "r-crane", 1)
    assert requests and {r.payload.recipient.person_id for r in requests} == {"r-crane"}
    assert all(r.payload.reason == DEBRIEF_ACTION_DUE and r.payload.case_id == case_id for r in requests)
    assert all("Learner A" not in r.model_dump_json() and "tutors" not in r.model_dump_json() for r in requests)
    [again, _] = timer_rows(routing)
    assert again.detail["reminder_number"] == 2 and again.due_at == first.due_at + EVERY
    second = await fire(routing, again)
    repeat_ids = {e.payload.notification_id for e in second if isinstance(e, NotificationRequested)}
    assert repeat_ids and not repeat_ids & {r.payload.notification_id for r in requests}, "a new id per reminder"


async def test_an_owner_the_policy_no_longer_names_is_replaced_by_the_dsls(routing: Routing) -> None:
    await debriefed_case(routing)
    [_, orphan] = timer_rows(routing)
    events = await fire(routing, orphan)
    [due] = [e for e in events if isinstance(e, DebriefActionDue)]
    assert due.payload.owner_id == "left-school" and due.payload.reminded == ["s-bird"]


async def test_marking_an_action_done_cancels_its_reminder_and_a_late_firing_reminds_nobody(routing: Routing) -> None:
    case_id, _ = await debriefed_case(routing)
    [first, other] = timer_rows(routing)
    owner = Actor(id="r-crane", role="deputy_designated_safeguarding_lead")
    await ask(routing, case_id, "complete_debrief_action", by=owner, action_id="brief-tutors", note="Done")
    assert [r.detail["action_id"] for r in timer_rows(routing)] == ["update-pshe"]
    assert [r.deadline_id for r in timer_rows(routing, status="cancelled")] == [first.deadline_id]
    events = await fire(routing, first)
    assert [e.type for e in events] == ["deadline.reached"] and events[0].payload.outcome == "already_met"
    assert other.detail["action_id"] == "update-pshe"


async def test_the_listing_folds_open_actions_and_links_policy_changes_to_the_version_adopted_after(
    routing: Routing,
) -> None:
    case_id, _ = await debriefed_case(routing)
    await ask(
        routing,
        case_id,
        "complete_debrief_action",
        action_id="update-pshe",
    )
    history = await routing.case_events.load(fake_work().session, case_id)
    assert [(o.action.action_id, o.overdue(date(2026, 3, 11))) for o in open_actions(history)] == [
        ("brief-tutors", True)
    ]
    asked = next(e for e in history if e.type == "case.debrief_recorded").occurred_at
    assert (
        adopted_after(asked, in_force=1, adopted=[(1, asked - EVERY), (2, asked + EVERY), (3, asked + 2 * EVERY)]) == 2
    )
    assert adopted_after(asked, in_force=1, adopted=[(1, asked - EVERY)]) is None
    await ask(routing, case_id, "record_debrief", lessons_learnt="Second look", policy_changes=["Name a deputy"])
    history = await routing.case_events.load(fake_work().session, case_id)
    [link] = policy_links(history, adopted=[(2, NOW + EVERY)], references={case_id: "SG-1"})
    assert (link["reference"], link["policy_version_in_force"], link["policy_version_adopted_after"]) == ("SG-1", 1, 2)


def test_the_command_line_reads_an_action_as_id_owner_date_and_description() -> None:
    assert debrief_action("brief|r-crane|2026-04-01|Brief tutors | all years") == {
        "action_id": "brief",
        "owner": "r-crane",
        "due_on": "2026-04-01",
        "description": "Brief tutors | all years",
    }
    with pytest.raises(Exception, match="ID\\|OWNER"):
        debrief_action("brief|r-crane")
