"""Receipts: a reference plus a one-time secret lets a reporter see the stage of a concern, and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.intake.tables import receipts
from shared.contracts.envelope import Event
from shared.inbox_outbox import InboxOutbox
from shared.unit_of_work import UnitOfWork, Work

STAGES = ("received", "seen", "being_handled", "closed")
STAGE_WORDS = {
    "received": "Received: the school's safeguarding lead has been told.",
    "seen": "Seen by the designated safeguarding lead.",
    "being_handled": "Being handled.",
    "closed": "Closed.",
}
SEEN = frozenset({"case.acknowledged"})
HANDLING = frozenset(
    {
        "case.reassigned",
        "case.action_recorded",
        "case.parent_notification_decided",
        "case.parents_informed",
        "case.person_linked",
        "case.decision_recorded",
        "case.reclassified",
        "case.outcome_recorded",
        "case.investigation_completed",
        "case.debrief_requested",
    }
)


def stage_after(current: str, event_type: str) -> str:
    """The stage after a case event: stages only move forward, except that a reopened case is handled again."""
    if event_type == "case.closed":
        return "closed"
    if event_type == "case.reopened":
        return "being_handled"
    target = "seen" if event_type in SEEN else "being_handled" if event_type in HANDLING else current
    if current == "closed":
        return current
    return max(current, target, key=STAGES.index)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_receipt_secret() -> str:
    """A new one-time secret for a receipt (only its hash is kept): shown to the reporter once."""
    return secrets.token_urlsafe(12)


# The case events that can move a receipt's stage (stage_after leaves every other one where it is).
MOVES = SEEN | HANDLING | {"case.closed", "case.reopened"}
# Every case event `on_case_events` reads: the receipts consumer acks any other (case.triaged, ...) unread.
READS = MOVES | {"case.opened"}

# case.opened links each case to its concern's reference (a receipt row exists already when one was issued).
_LINK = """
    insert into intake.receipts (reference, school_id, case_id, status, updated_at)
    select reference, school_id, case_id, 'received', updated_at
    from unnest(cast(:references as text[]), cast(:schools as text[]), cast(:case_ids as text[]),
                cast(:times as timestamptz[]), cast(:event_ids as uuid[]))
      as opened(reference, school_id, case_id, updated_at, event_id){fresh}
    on conflict (reference) do update set case_id = excluded.case_id
    """
LINK = sa.text(_LINK.format(fresh=""))
# A batch of case.opened alone is this one statement, claiming the events for the consumer: an event claimed before
# (a redelivery) links nothing.
LINK_CLAIMING = sa.text(
    f"with claimed as ({InboxOutbox('intake').claim_sql()})"
    + _LINK.format(fresh="\n    where event_id in (select event_id from claimed)")
)


def only_links(events: Sequence[Event[Any]]) -> bool:
    """Whether the batch is case.opened alone, so `on_case_events` handles it in one statement claiming it too."""
    return all(event.type == "case.opened" for event in events)


_STAGES = sa.text(
    "select case_id, status from intake.receipts "
    "where case_id = any(cast(:case_ids as text[])) order by case_id for update"
)
_MOVE = sa.text(
    """
    update intake.receipts set status = moved.status, updated_at = moved.updated_at
    from unnest(cast(:case_ids as text[]), cast(:statuses as text[]), cast(:times as timestamptz[]))
      as moved(case_id, status, updated_at)
    where receipts.case_id = moved.case_id
    """
)


async def on_case_events(
    events: Sequence[Event[Any]], *, work: Work, stream_sequences: Mapping[uuid.UUID, int] | None = None
) -> None:
    """Move receipts' stages on from a batch of case events (case.opened links case and reference), in at most
    three statements: link the opened cases, read the stages that may move (locked), write the ones that moved.
    A batch of case.opened alone is the one statement linking them, which claims the batch too (`only_links`)."""
    opened = {event.payload.reference: event for event in events if event.type == "case.opened"}
    claim = work.take_claim()
    if opened or claim is not None:
        claiming = {} if claim is None else claim.parameters()
        await work.session.execute(
            LINK if claim is None else LINK_CLAIMING,
            claiming
            | {
                "event_ids": [event.event_id for event in opened.values()],
                "references": list(opened),
                "schools": [event.school_id for event in opened.values()],
                "case_ids": [event.payload.case_id for event in opened.values()],
                "times": [event.occurred_at for event in opened.values()],
            },
        )
    moving = [event for event in events if event.type in MOVES and getattr(event.payload, "case_id", None)]
    if not moving:
        return
    case_ids = sorted({event.payload.case_id for event in moving})
    stages = {row.case_id: row.status for row in await work.session.execute(_STAGES, {"case_ids": case_ids})}
    moved: dict[str, tuple[str, datetime]] = {}
    for event in moving:
        case_id = event.payload.case_id
        current = stages.get(case_id)
        if current is not None and (stage := stage_after(current, event.type)) != current:
            stages[case_id] = stage
            moved[case_id] = (stage, event.occurred_at)
    if moved:
        await work.session.execute(
            _MOVE,
            {
                "case_ids": list(moved),
                "statuses": [stage for stage, _ in moved.values()],
                "times": [at for _, at in moved.values()],
            },
        )


async def stage_of(uow: UnitOfWork, *, reference: str, secret: str) -> str | None:
    """The concern's stage when the reference and secret match; None otherwise (never says which was wrong)."""
    async with uow.begin() as work:
        row = (
            await work.session.execute(
                sa.select(receipts.c.status, receipts.c.secret_sha256).where(receipts.c.reference == reference.strip())
            )
        ).first()
    if row is None or row.secret_sha256 is None:
        return None
    return row.status if hmac.compare_digest(row.secret_sha256, digest(secret.strip())) else None
