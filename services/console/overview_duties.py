"""What the trust overview lists as outstanding: acknowledgements and deadlines, debrief actions, policy reviews.

Pure functions over read-model rows (already limited to the viewer's schools by row-level security, and to the
cases they may be shown). References, person ids, kinds and dates only: never what a case, a deadline or an
action says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.routing.domain import ACKNOWLEDGE


@dataclass(frozen=True)
class DueItem:
    """A case's acknowledgement or a deadline its school's policy set, not yet met."""

    school_id: str
    reference: str
    kind: str
    due_at: datetime
    overdue: bool
    reminded_at: datetime | None = None


@dataclass(frozen=True)
class OutstandingAction:
    """A debrief action not marked done: whose, and by when."""

    school_id: str
    reference: str
    action_id: str
    owner: str
    due_on: date
    overdue: bool
    reminders: int


@dataclass(frozen=True)
class PolicyReview:
    """A school's policy in force and when it is next reviewed."""

    school_id: str
    version: int
    review_due: date | None
    overdue: bool
    reminded_at: datetime | None


def school_today(timezone: str | None, *, now: datetime) -> date:
    """Today's date at the school (its policy's timezone; UTC when it names none or an unknown one)."""
    try:
        zone: Any = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return now.astimezone(zone).date()


def due_items(cases: Iterable[Any], deadlines: Iterable[Any], *, now: datetime) -> list[DueItem]:
    """Unacknowledged cases' acknowledgements, and each case deadline while its case is open; soonest first.

    A deadline the policy sets (e.g. consider a LADO referral) is outstanding until the case is closed: routing
    reminds the people told when it comes, and nothing in the record says it was met before the case ends.
    """
    by_id = {row.case_id: row for row in cases}
    found = [
        DueItem(row.school_id, row.reference, ACKNOWLEDGE, row.acknowledge_due, row.acknowledge_due < now)
        for row in by_id.values()
        if row.status == "open" and row.acknowledge_due is not None
    ]
    for deadline in deadlines:
        case = by_id.get(deadline.case_id)
        if case is None or case.status == "closed":
            continue
        found.append(
            DueItem(
                case.school_id,
                case.reference,
                deadline.kind,
                deadline.due_at,
                deadline.due_at < now,
                reminded_at=deadline.reached_at,
            )
        )
    return sorted(found, key=lambda item: (item.due_at, item.school_id, item.reference, item.kind))


def outstanding_actions(
    cases: Iterable[Any], actions: Iterable[Any], *, today: Mapping[str, date]
) -> list[OutstandingAction]:
    """Open debrief actions of the cases shown, overdue when due before the school's today; soonest first."""
    references = {row.case_id: row.reference for row in cases}
    found = [
        OutstandingAction(
            action.school_id,
            references[action.case_id],
            action.action_id,
            action.owner,
            action.due_on,
            action.due_on < today[action.school_id],
            action.reminders,
        )
        for action in actions
        if action.case_id in references
    ]
    return sorted(found, key=lambda item: (item.due_on, item.school_id, item.reference, item.action_id))


def latest_versions(policies: Iterable[Any]) -> dict[str, Any]:
    """Each school's latest adopted policy version's row, by school."""
    latest: dict[str, Any] = {}
    for row in policies:
        if row.school_id not in latest or row.version > latest[row.school_id].version:
            latest[row.school_id] = row
    return dict(sorted(latest.items()))


def policy_reviews(latest: Mapping[str, Any], *, today: Mapping[str, date]) -> list[PolicyReview]:
    """Each school's policy in force (`latest_versions`) and its review date, overdue once past; by school."""
    return [
        PolicyReview(
            school_id,
            row.version,
            row.review_due,
            row.review_due is not None and row.review_due < today[school_id],
            row.review_reminded_at,
        )
        for school_id, row in latest.items()
    ]


def overdue_per_school(
    schools: Iterable[str],
    *,
    due: Iterable[DueItem],
    actions: Iterable[OutstandingAction],
    reviews: Iterable[PolicyReview],
) -> dict[str, int]:
    """Everything overdue at each school (acknowledgements, deadlines, debrief actions, its policy review)."""
    counts = dict.fromkeys(sorted(schools), 0)
    items: list[DueItem | OutstandingAction | PolicyReview] = [*due, *actions, *reviews]
    for item in items:
        if item.overdue:
            counts[item.school_id] = counts.get(item.school_id, 0) + 1
    return counts
