"""Receipts: a reference plus a one-time secret lets a reporter see the stage of a concern, and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.intake.tables import receipts
from shared.contracts.envelope import Event
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


async def on_case_event(event: Event[Any], *, work: Work) -> list[Event[Any]]:
    """Move a receipt's stage on from the case events routing publishes (case.opened links case and reference)."""
    payload = event.payload
    if event.type == "case.opened":
        await work.session.execute(
            insert(receipts)
            .values(
                reference=payload.reference,
                school_id=event.school_id,
                case_id=payload.case_id,
                status="received",
                updated_at=event.occurred_at,
            )
            .on_conflict_do_update(index_elements=[receipts.c.reference], set_={"case_id": payload.case_id})
        )
        return []
    case_id = getattr(payload, "case_id", None)
    if case_id is None:
        return []
    current = (
        await work.session.execute(sa.select(receipts.c.status).where(receipts.c.case_id == case_id).with_for_update())
    ).scalar_one_or_none()
    if current is not None and stage_after(current, event.type) != current:
        await work.session.execute(
            sa.update(receipts)
            .where(receipts.c.case_id == case_id)
            .values(status=stage_after(current, event.type), updated_at=event.occurred_at)
        )
    return []


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
