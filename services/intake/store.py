"""Intake's schema: raw inputs and accepted concerns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.events import ConcernReceived
from shared.inbox_outbox import InboxOutbox

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
    # The sweeper's question: which inputs were kept but never finished (a crash between keeping and parsing)?
    sa.Index("raw_inputs_unfinished", "received_at", postgresql_where=sa.text("status = 'received'")),
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


OUTBOX = InboxOutbox(SCHEMA)

# Keep a raw input as received; nothing when its idempotency key was seen before (then the earlier one is read).
_KEEP_RAW = sa.text(
    f"""
    insert into {SCHEMA}.raw_inputs
      (raw_input_id, school_id, channel, content_type, body, idempotency_key, received_at, status)
    values (:raw_input_id, :school_id, :channel, :content_type, :body, :idempotency_key, :received_at, 'received')
    on conflict do nothing
    returning raw_input_id
    """
)

# The concern, the link from its raw input, its receipt and its outbox row, in one statement (atomic alone, so it
# needs no transaction block); nothing at all when the reference is taken.
_ACCEPT = sa.text(
    f"""
    with concern as (
      insert into {SCHEMA}.concerns (reference, school_id, raw_input_id, event_id, received_at, payload)
      values (:reference, :school_id, :raw_input_id, :event_id, :received_at, cast(:payload as jsonb))
      on conflict (reference) do nothing
      returning reference, school_id, raw_input_id
    ), linked as (
      update {SCHEMA}.raw_inputs set status = 'accepted', reference = concern.reference
      from concern where raw_inputs.raw_input_id = concern.raw_input_id
      returning concern.reference
    ), receipt as (
      insert into {SCHEMA}.receipts (reference, school_id, secret_sha256, status, updated_at)
      select reference, school_id, cast(:receipt_sha256 as text), 'received', :received_at
      from concern where cast(:receipt_sha256 as text) is not null
      on conflict (reference) do update set secret_sha256 = excluded.secret_sha256
    ), published as (
      {OUTBOX.enqueue_one_sql("concern")}
    )
    select reference from linked
    """
)


@dataclass(frozen=True)
class RawInput:
    raw_input_id: uuid.UUID
    status: str
    reference: str | None
    rejection_reason: str | None


@dataclass(frozen=True)
class StuckInput:
    raw_input_id: uuid.UUID
    school_id: str
    channel: str
    body: bytes
    received_at: datetime


class IntakeStore(Protocol):
    """What intake asks of its tables (`SqlIntakeStore`; a fake in tests/support/fakes.py)."""

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
    ) -> RawInput: ...

    async def reject(self, session: AsyncSession, *, raw_input_id: uuid.UUID, reason: str) -> bool: ...

    async def stuck(self, session: AsyncSession, *, before: datetime, limit: int) -> list[StuckInput]: ...

    async def reference_of(self, session: AsyncSession, *, raw_input_id: uuid.UUID) -> str | None: ...

    async def accept(
        self, session: AsyncSession, event: ConcernReceived, *, receipt_sha256: str | None = None
    ) -> bool: ...


class SqlIntakeStore:
    """Raw inputs first, then the concern, its receipt and its outbox row in one statement."""

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
                _KEEP_RAW,
                {
                    "raw_input_id": new_id,
                    "school_id": school_id,
                    "channel": channel,
                    "content_type": content_type,
                    "body": body,
                    "idempotency_key": idempotency_key,
                    "received_at": received_at,
                },
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

    async def reject(self, session: AsyncSession, *, raw_input_id: uuid.UUID, reason: str) -> bool:
        """Mark a raw input still `received` as quarantined with its reason (the bytes stay); False if it was not."""
        changed = await session.execute(
            sa.update(raw_inputs)
            .where(raw_inputs.c.raw_input_id == raw_input_id, raw_inputs.c.status == "received")
            .values(status="rejected", rejection_reason=reason)
            .returning(raw_inputs.c.raw_input_id)
        )
        return changed.first() is not None

    async def stuck(self, session: AsyncSession, *, before: datetime, limit: int) -> list[StuckInput]:
        """Raw inputs still `received` that arrived before `before`: kept, but never finished (a crash between)."""
        rows = await session.execute(
            sa.select(
                raw_inputs.c.raw_input_id,
                raw_inputs.c.school_id,
                raw_inputs.c.channel,
                raw_inputs.c.body,
                raw_inputs.c.received_at,
            )
            .where(raw_inputs.c.status == "received", raw_inputs.c.received_at < before)
            .order_by(raw_inputs.c.received_at)
            .limit(limit)
        )
        return [StuckInput(*row) for row in rows]

    async def reference_of(self, session: AsyncSession, *, raw_input_id: uuid.UUID) -> str | None:
        """The reference a raw input was accepted under, if it was."""
        return (
            await session.execute(sa.select(concerns.c.reference).where(concerns.c.raw_input_id == raw_input_id))
        ).scalar_one_or_none()

    async def accept(self, session: AsyncSession, event: ConcernReceived, *, receipt_sha256: str | None = None) -> bool:
        """Record the concern, link its raw input, issue its receipt (given the secret's hash) and put the event in
        the outbox, in one statement; False (and nothing written) if the reference is already taken."""
        payload = event.payload
        accepted = await session.execute(
            _ACCEPT,
            {
                "reference": payload.reference,
                "school_id": event.school_id,
                "raw_input_id": uuid.UUID(payload.raw_input_id),
                "event_id": event.event_id,
                "received_at": payload.received_at,
                "payload": payload.model_dump_json(),
                "receipt_sha256": receipt_sha256,
                **OUTBOX.one_parameters(event),
            },
        )
        return accepted.first() is not None
