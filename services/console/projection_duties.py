"""The read model's outstanding duties, kept from the event stream: case deadlines, debrief actions, policy reviews.

Called by `projection.on_events` for each batch, in stream order, so rebuilding from the stream gives the same
rows. Each keeps references, person ids and dates only, never what a deadline or an action says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.store import deadlines, debrief_actions, policies
from services.routing.debrief_reminders import DEBRIEF_ACTION
from services.routing.domain import ACKNOWLEDGE, STANDING_ALERT
from services.routing.policy_book import POLICY_REVIEW
from services.routing.quiet import DEFERRED
from shared.contracts.case_events import DebriefActionDue
from shared.contracts.envelope import Event
from shared.contracts.events import DeadlineReached, DeadlineSet, PolicyAdopted, PolicyReviewDue

# Routing's own timers, shown elsewhere (acknowledgements on the case row, debrief actions and policy reviews in
# their own tables) or internal (the standing alert, a message held over quiet hours). The rest are the
# deadlines the school's policy sets on a case, such as considering a LADO referral.
ROUTING_TIMERS = frozenset({ACKNOWLEDGE, STANDING_ALERT, DEBRIEF_ACTION, POLICY_REVIEW, DEFERRED})


def review_due(event: PolicyAdopted) -> str | None:
    """The policy's next review date (ISO), from the event or, for an older event, the document it carries."""
    return event.payload.review_due or (event.payload.document.get("source") or {}).get("next_review")


def policy_row(event: PolicyAdopted) -> dict[str, Any]:
    """The `policies` row for an adopted version."""
    due = review_due(event)
    return {
        "school_id": event.school_id,
        "version": event.payload.version,
        "digest": event.payload.digest,
        "document": event.payload.document,
        "adopted_at": event.occurred_at,
        "adopted_by": event.actor.id,
        "review_due": date.fromisoformat(due) if due else None,
    }


async def keep_policy_reviews(session: AsyncSession, events: Sequence[Event[Any]]) -> None:
    """Each reminder that a policy's review is due: when it was sent, on its version's row."""
    reminded = [e for e in events if isinstance(e, PolicyReviewDue)]
    if reminded:
        await session.execute(
            sa.update(policies)
            .where(policies.c.school_id == sa.bindparam("school"), policies.c.version == sa.bindparam("number"))
            .values(review_reminded_at=sa.bindparam("at")),
            [{"school": e.school_id, "number": e.payload.version, "at": e.occurred_at} for e in reminded],
        )


async def keep_deadlines(session: AsyncSession, events: Sequence[Event[Any]]) -> None:
    """The policy's deadlines on cases as set, and when each fired (either may come first: both upsert)."""
    set_ = [e for e in events if isinstance(e, DeadlineSet) and e.payload.kind not in ROUTING_TIMERS]
    reached = [e for e in events if isinstance(e, DeadlineReached) and e.payload.kind not in ROUTING_TIMERS]
    if set_:
        await session.execute(
            insert(deadlines).on_conflict_do_nothing(),
            [_deadline(e) | {"reached_at": None, "outcome": None} for e in set_],
        )
    if reached:
        statement = insert(deadlines)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[deadlines.c.deadline_id],
                set_={"reached_at": statement.excluded.reached_at, "outcome": statement.excluded.outcome},
            ),
            [_deadline(e) | {"reached_at": e.occurred_at, "outcome": e.payload.outcome} for e in reached],
        )


def _deadline(event: DeadlineSet | DeadlineReached) -> dict[str, Any]:
    body = event.payload
    return {
        "deadline_id": body.deadline_id,
        "school_id": event.school_id,
        "case_id": body.case_id,
        "kind": body.kind,
        "due_at": body.due_at,
    }


async def count_reminders(session: AsyncSession, events: Iterable[Event[Any]]) -> None:
    """How many times each open action's owner has been reminded (after the batch's actions are kept)."""
    due = [e for e in events if isinstance(e, DebriefActionDue)]
    if due:
        await session.execute(
            sa.update(debrief_actions)
            .where(
                debrief_actions.c.case_id == sa.bindparam("case"),
                debrief_actions.c.action_id == sa.bindparam("action"),
            )
            .values(reminders=sa.func.greatest(debrief_actions.c.reminders, sa.bindparam("number"))),
            [
                {"case": e.payload.case_id, "action": e.payload.action_id, "number": e.payload.reminder_number}
                for e in due
            ],
        )
