"""Intake's schema: raw inputs and accepted concerns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.events import ConcernReceived

SCHEMA = "intake"
metadata = sa.MetaData(schema=SCHEMA)

raw_inputs = sa.Table(
    "raw_inputs",
    metadata,
    sa.Column("raw_input_id", sa.Uuid, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rejection_reason", sa.Text),
    sa.Column("reference", sa.Text),
    sa.UniqueConstraint("school_id", "channel", "idempotency_key"),
)

concerns = sa.Table(
    "concerns",
    metadata,
    sa.Column("reference", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("raw_input_id", sa.Uuid, sa.ForeignKey(raw_inputs.c.raw_input_id), nullable=False, unique=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", JSONB, nullable=False),
)


@dataclass(frozen=True)
class RawInput:
    raw_input_id: uuid.UUID
    status: str
    reference: str | None
    rejection_reason: str | None


class SqlIntakeStore:
    """Raw inputs first, then the concern and its outbox row in one transaction."""

    async def keep_raw(
        self,
        session: AsyncSession,
        *,
        school_id: str,
        channel: str,
        content_type: str,
        body: bytes,
        received_at: datetime,
        idempotency_key: str | None,
    ) -> RawInput:
        """Store the input exactly as received; with a repeated idempotency key, return the earlier one."""
        new_id = uuid.uuid4()
        inserted = (
            await session.execute(
                insert(raw_inputs)
                .values(
                    raw_input_id=new_id,
                    school_id=school_id,
                    channel=channel,
                    content_type=content_type,
                    body=body,
                    idempotency_key=idempotency_key,
                    received_at=received_at,
                    status="received",
                )
                .on_conflict_do_nothing()
                .returning(raw_inputs.c.raw_input_id)
            )
        ).first()
        if inserted is not None:
            return RawInput(new_id, "received", None, None)
        earlier = (
            await session.execute(
                sa.select(raw_inputs).where(
                    raw_inputs.c.school_id == school_id,
                    raw_inputs.c.channel == channel,
                    raw_inputs.c.idempotency_key == idempotency_key,
                )
            )
        ).one()
        return RawInput(earlier.raw_input_id, earlier.status, earlier.reference, earlier.rejection_reason)

    async def reject(self, session: AsyncSession, *, raw_input_id: uuid.UUID, reason: str) -> None:
        """Mark a raw input as quarantined with its reason; the bytes stay."""
        await session.execute(
            sa.update(raw_inputs)
            .where(raw_inputs.c.raw_input_id == raw_input_id)
            .values(status="rejected", rejection_reason=reason)
        )

    async def reference_of(self, session: AsyncSession, *, raw_input_id: uuid.UUID) -> str | None:
        """The reference a raw input was accepted under, if it was."""
        return (
            await session.execute(sa.select(concerns.c.reference).where(concerns.c.raw_input_id == raw_input_id))
        ).scalar_one_or_none()

    async def accept(self, session: AsyncSession, event: ConcernReceived) -> bool:
        """Record the concern and link its raw input; False if the reference is already taken."""
        payload = event.payload
        inserted = (
            await session.execute(
                insert(concerns)
                .values(
                    reference=payload.reference,
                    school_id=event.school_id,
                    raw_input_id=uuid.UUID(payload.raw_input_id),
                    event_id=event.event_id,
                    received_at=payload.received_at,
                    payload=payload.model_dump(mode="json"),
                )
                .on_conflict_do_nothing(index_elements=[concerns.c.reference])
                .returning(concerns.c.reference)
            )
        ).first()
        if inserted is None:
            return False
        await session.execute(
            sa.update(raw_inputs)
            .where(raw_inputs.c.raw_input_id == uuid.UUID(payload.raw_input_id))
            .values(status="accepted", reference=payload.reference)
        )
        return True
