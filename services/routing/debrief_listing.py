"""A school's open debrief actions and the policy changes its debriefs asked for, read from the case events.

`open_actions` and `policy_links` are pure folds over the debrief events; `list_debrief_actions` reads them (and
each action's pending reminder, and the school's adopted policy versions) in one session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.debrief_reminders import DEBRIEF_ACTION
from services.routing.store import case_events, cases, deadlines, policies
from shared.contracts.case_events import CaseDebriefActionCompleted, CaseDebriefRecorded, DebriefAction
from shared.contracts.envelope import Event, parse_event

DEBRIEF_EVENTS = (CaseDebriefRecorded.TYPE, CaseDebriefActionCompleted.TYPE)


@dataclass(frozen=True)
class OpenAction:
    """One action a debrief set that is not marked done."""

    case_id: str
    action: DebriefAction
    debriefed_at: datetime

    def overdue(self, today: date) -> bool:
        return self.action.due_on < today


def open_actions(events: Iterable[Event[Any]]) -> list[OpenAction]:
    """The actions still open after these debrief events (in each case's order), by due date then case."""
    still_open: dict[tuple[str, str], OpenAction] = {}
    for event in events:
        if isinstance(event, CaseDebriefRecorded):
            for action in event.payload.actions:
                key = (event.payload.case_id, action.action_id)
                still_open.setdefault(key, OpenAction(event.payload.case_id, action, event.occurred_at))
        elif isinstance(event, CaseDebriefActionCompleted):
            still_open.pop((event.payload.case_id, event.payload.action_id), None)
    return sorted(still_open.values(), key=lambda o: (o.action.due_on, o.case_id, o.action.action_id))


def adopted_after(asked_at: datetime, *, in_force: int, adopted: Iterable[tuple[int, datetime]]) -> int | None:
    """The first policy version newer than `in_force` adopted after the change was asked for, if any."""
    later = [version for version, at in adopted if version > in_force and at >= asked_at]
    return min(later, default=None)


def policy_links(
    events: Iterable[Event[Any]], *, adopted: Iterable[tuple[int, datetime]], references: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each policy change a debrief asked for: the version in force for the case, and the one adopted after."""
    versions = list(adopted)
    return [
        {
            "case_id": event.payload.case_id,
            "reference": references.get(event.payload.case_id, ""),
            "change": change.change,
            "asked_at": event.occurred_at.isoformat(),
            "policy_version_in_force": change.policy_version,
            "policy_version_adopted_after": adopted_after(
                event.occurred_at, in_force=change.policy_version, adopted=versions
            ),
        }
        for event in events
        if isinstance(event, CaseDebriefRecorded)
        for change in event.payload.policy_changes
    ]


def action_row(
    item: OpenAction, *, today: date, reference: str, reminder: tuple[datetime, int] | None
) -> dict[str, Any]:
    """An open action as the listing shows it."""
    action = item.action
    return {
        "case_id": item.case_id,
        "reference": reference,
        "action_id": action.action_id,
        "description": action.description,
        "owner": action.owner,
        "due_on": action.due_on.isoformat(),
        "overdue": item.overdue(today),
        "reminders_sent": reminder[1] - 1 if reminder else None,
        "next_reminder_at": reminder[0].isoformat() if reminder else None,
    }


async def list_debrief_actions(
    session: AsyncSession, *, school_id: str, today: date, overdue_only: bool = False, owner: str | None = None
) -> dict[str, Any]:
    """The school's open debrief actions (all, or the overdue ones, or one owner's) and its policy changes."""
    rows = await session.execute(
        sa.select(case_events.c.event)
        .where(case_events.c.school_id == school_id, case_events.c.event_type.in_(DEBRIEF_EVENTS))
        .order_by(case_events.c.case_id, case_events.c.version)
    )
    events = [parse_event(row.event) for row in rows]
    named = await session.execute(sa.select(cases.c.case_id, cases.c.reference).where(cases.c.school_id == school_id))
    references = {row.case_id: row.reference for row in named}
    pending = await session.execute(
        sa.select(deadlines.c.case_id, deadlines.c.due_at, deadlines.c.detail).where(
            deadlines.c.school_id == school_id, deadlines.c.kind == DEBRIEF_ACTION, deadlines.c.status == "pending"
        )
    )
    reminders = {
        (row.case_id, row.detail["action_id"]): (row.due_at, int(row.detail["reminder_number"])) for row in pending
    }
    versions = await session.execute(
        sa.select(policies.c.version, policies.c.adopted_at).where(policies.c.school_id == school_id)
    )
    adopted = [(row.version, row.adopted_at) for row in versions]
    listed = [
        action_row(
            item,
            today=today,
            reference=references.get(item.case_id, ""),
            reminder=reminders.get((item.case_id, item.action.action_id)),
        )
        for item in open_actions(events)
        if (not overdue_only or item.overdue(today)) and (owner is None or item.action.owner == owner)
    ]
    links = policy_links(events, adopted=adopted, references=references) if owner is None else []
    return {"ok": True, "school_id": school_id, "today": today.isoformat(), "actions": listed, "policy_changes": links}
