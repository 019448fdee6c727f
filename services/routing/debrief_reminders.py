"""Debrief actions reminded until done: one durable timer per open action in routing's due-table.

Recording a debrief sets, per action, a deadline row (kind `debrief_action`) due at 09:00 school time on the
action's due date. When it fires and the action is still open, routing records `debrief.action_due`, asks for a
reminder to the owner on their channels (its own wording: reason `debrief_action_due`) and sets the next row a
fixed interval later, in the same transaction: a restart never loses a reminder nor sends one twice. Marking the
action done cancels its pending row; a row that fires after all finds the action done and reminds nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.case.state import CaseState, fold
from services.routing.domain import ROUTING, derived_id, notification_requests
from services.routing.policy.decision import Recipient
from services.routing.policy.model import Policy
from services.routing.policy.vocabulary import DSL
from services.routing.store import CaseEvents, Deadlines, DueDeadline
from shared.contracts.case_events import (
    DEBRIEF_ACTION_DUE,
    CaseDebriefActionCompleted,
    CaseDebriefRecorded,
    DebriefActionDue,
    DebriefActionDuePayload,
)
from shared.contracts.envelope import Event
from shared.contracts.events import DeadlineSet, DeadlineSetPayload

DEBRIEF_ACTION = "debrief_action"
REMIND_AT = time(9, 0)  # school time, on the due date


def first_reminder_at(due_on: date, *, timezone: str) -> datetime:
    """When an action due on `due_on` is first reminded: 09:00 that day in the school's timezone."""
    return datetime.combine(due_on, REMIND_AT, tzinfo=ZoneInfo(timezone))


def next_reminder_at(due_at: datetime, *, every: timedelta, now: datetime) -> datetime:
    """The repeat after the reminder due at `due_at`: `every` later, or `every` from now if that has passed."""
    later = due_at + every
    return later if later > now else now + every


def reminder_deadline(
    *, case_id: str, school_id: str, action_id: str, number: int, due_at: datetime, cause: Event[Any], now: datetime
) -> DeadlineSet:
    """The timer for reminder `number` of one action (ids derived: setting it twice sets it once)."""
    deadline_id = derived_id("deadline", case_id, DEBRIEF_ACTION, action_id, number)
    return DeadlineSet.new(
        DeadlineSetPayload(
            deadline_id=deadline_id,
            case_id=case_id,
            kind=DEBRIEF_ACTION,
            due_at=due_at,
            description=f"Debrief action {action_id}: its owner is reminded until it is marked done.",
            escalation_rung=0,
        ),
        school_id=school_id,
        aggregate_id=deadline_id,
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
    )


def _detail(timer: DeadlineSet, *, action_id: str, owner: str, due_on: date, number: int) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "owner": owner,
        "due_on": due_on.isoformat(),
        "reminder_number": number,
        "cause": timer.model_dump(mode="json"),
    }


async def _set(session: AsyncSession, deadlines: Deadlines, timer: DeadlineSet, detail: dict[str, Any]) -> None:
    await deadlines.set(
        session,
        deadline_id=timer.payload.deadline_id,
        school_id=timer.school_id,
        case_id=timer.payload.case_id,
        kind=DEBRIEF_ACTION,
        due_at=timer.payload.due_at,
        detail=detail,
    )


async def track_debrief_actions(
    session: AsyncSession, events: Sequence[Event[Any]], *, deadlines: Deadlines, timezone: str, now: datetime
) -> list[Event[Any]]:
    """Set a timer for each action a recorded debrief adds, cancel the timer of an action marked done.

    Returns the `deadline.set` events to publish with the command's own.
    """
    timers: list[Event[Any]] = []
    for event in events:
        if isinstance(event, CaseDebriefRecorded):
            for action in event.payload.actions:
                timer = reminder_deadline(
                    case_id=event.payload.case_id,
                    school_id=event.school_id,
                    action_id=action.action_id,
                    number=1,
                    due_at=first_reminder_at(action.due_on, timezone=timezone),
                    cause=event,
                    now=now,
                )
                detail = _detail(timer, action_id=action.action_id, owner=action.owner, due_on=action.due_on, number=1)
                await _set(session, deadlines, timer, detail)
                timers.append(timer)
        elif isinstance(event, CaseDebriefActionCompleted):
            await deadlines.cancel_for_case(
                session,
                case_id=event.payload.case_id,
                kinds=[DEBRIEF_ACTION],
                at=now,
                matching={"action_id": event.payload.action_id},
            )
    return timers


def reminded_people(policy: Policy, *, owner: str) -> list[Recipient]:
    """The owner, in their first role; if the policy no longer names them, the DSLs (never nobody)."""
    person = policy.person(owner)
    if person is not None and not person.external:
        return [Recipient(person_id=person.id, name=person.name, role=person.roles[0], channels=person.contact)]
    return [Recipient(person_id=p.id, name=p.name, role=DSL, channels=p.contact) for p in policy.holders(DSL)]


def reminder_events(
    due: DueDeadline,
    *,
    state: CaseState,
    policy: Policy,
    every: timedelta,
    cause: Event[Any],
    now: datetime,
) -> list[Event[Any]]:
    """Reminder `n` of a still-open action: `debrief.action_due`, a request per channel, the next timer."""
    action_id, number = str(due.detail["action_id"]), int(due.detail["reminder_number"])
    action = state.debrief_action(action_id)
    assert action is not None, "only an open action is reminded"
    people = reminded_people(policy, owner=action.owner)
    reminder = DebriefActionDue.new(
        DebriefActionDuePayload(
            case_id=state.case_id,
            reference=state.reference,
            action_id=action_id,
            owner_id=action.owner,
            reminded=[p.person_id for p in people],
            due_on=action.due_on,
            reminder_number=number,
            repeats_every_hours=every.total_seconds() / 3600,
        ),
        school_id=due.school_id,
        aggregate_id=f"{state.case_id}:{action_id}",
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
    )
    requests = notification_requests(
        people,
        case_id=state.case_id,
        reference=state.reference,
        urgency="medium",
        reason=DEBRIEF_ACTION_DUE,
        rung=0,
        school_id=due.school_id,
        cause=cause,
        now=now,
        plan=policy.notifications,
        repeat=number,
        topic=f"debrief:{action_id}",
    )
    repeat = reminder_deadline(
        case_id=state.case_id,
        school_id=due.school_id,
        action_id=action_id,
        number=number + 1,
        due_at=next_reminder_at(due.due_at, every=every, now=now),
        cause=cause,
        now=now,
    )
    return [reminder, *requests, repeat]


async def remind_debrief_action(
    due: DueDeadline,
    *,
    session: AsyncSession,
    case_events: CaseEvents,
    deadlines: Deadlines,
    policy: Policy,
    every: timedelta,
    cause: Event[Any],
    now: datetime,
) -> tuple[list[Event[Any]], str]:
    """Remind the owner if the action is still open and set the next repeat; nothing once it is done."""
    state = fold(await case_events.load(session, due.case_id))
    action = state.debrief_action(str(due.detail["action_id"]))
    if action is None:
        return [], "already_met"
    events = reminder_events(due, state=state, policy=policy, every=every, cause=cause, now=now)
    timer = next(e for e in events if isinstance(e, DeadlineSet))
    number = int(due.detail["reminder_number"]) + 1
    detail = _detail(timer, action_id=action.action_id, owner=action.owner, due_on=action.due_on, number=number)
    await _set(session, deadlines, timer, detail)
    return events, "reminded"
