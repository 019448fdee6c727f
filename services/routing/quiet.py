"""Quiet hours: a non-urgent notification asked for at night is held in the due-table and sent when they end.

A person's own quiet hours (their `contact.quiet_hours` in the policy) replace the school's for them.

Held, never dropped: the requests are kept whole in a deadline row of kind `deliver_after_quiet_hours`, and
the scheduler publishes them (once) when it comes due. Urgent ones are never held (policy/notifying.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.domain import derived_id
from services.routing.policy.model import Policy
from services.routing.store import Deadlines, DueDeadline
from shared.contracts.envelope import Event, parse_event
from shared.contracts.events import NotificationRequested

DEFERRED = "deliver_after_quiet_hours"


def held_back(
    events: Sequence[Event[Any]], *, policy: Policy, now: datetime
) -> tuple[list[Event[Any]], dict[tuple[str, datetime], list[NotificationRequested]]]:
    """The events to publish now, and the requests to hold, by (case, when quiet hours end)."""
    plan, zone = policy.notifications, policy.working_days.timezone
    now_events: list[Event[Any]] = []
    held: dict[tuple[str, datetime], list[NotificationRequested]] = {}
    for event in events:
        until = None
        if isinstance(event, NotificationRequested):
            person = policy.person(event.payload.recipient.person_id)
            own = person.contact.quiet_hours if person is not None else None
            until = plan.quiet_until(now, urgency=event.payload.urgency, timezone=zone, own=own)
        if until is None:
            now_events.append(event)
        else:
            assert isinstance(event, NotificationRequested)
            held.setdefault((event.payload.case_id, until), []).append(event)
    return now_events, held


def quiet_hold(
    events: Sequence[Event[Any]], *, policy: Policy, now: datetime
) -> tuple[list[Event[Any]], list[DueDeadline]]:
    """The events to publish now, and the deadline rows that hold the rest until quiet hours end."""
    now_events, held = held_back(events, policy=policy, now=now)
    rows = [
        DueDeadline(
            deadline_id=derived_id(DEFERRED, *sorted(r.payload.notification_id for r in requests)),
            school_id=requests[0].school_id,
            case_id=case_id,
            kind=DEFERRED,
            due_at=until,
            detail={
                "requests": [r.model_dump(mode="json") for r in requests],
                "cause": requests[0].model_dump(mode="json"),
            },
        )
        for (case_id, until), requests in held.items()
    ]
    return now_events, rows


async def hold_for_quiet_hours(
    events: Sequence[Event[Any]], *, session: AsyncSession, deadlines: Deadlines, policy: Policy, now: datetime
) -> list[Event[Any]]:
    """Keep non-urgent requests asked for in quiet hours until they end; returns what goes now."""
    now_events, held = quiet_hold(events, policy=policy, now=now)
    await deadlines.set_all(session, held)
    return now_events


def released(due: DueDeadline) -> list[Event[Any]]:
    """Quiet hours are over: the requests held, exactly as they were asked for."""
    return [parse_event(request) for request in due.detail["requests"]]
