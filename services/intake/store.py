"""Intake's schema: raw inputs and accepted concerns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.statements import ACCEPT_ALL, EARLIER_RAW, KEEP_RAW_ALL, SCHEMA
from shared.contracts.events import ConcernReceived
from shared.inbox_outbox import outbox_parameters, written_rows
from shared.unit_of_work import Work

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


@dataclass(frozen=True)
class RawInput:
    raw_input_id: uuid.UUID
    status: str
    reference: str | None
    rejection_reason: str | None


@dataclass(frozen=True)
class Arrived:
    """An input to keep as it was received."""

    school_id: str
    channel: str
    content_type: str
    body: bytes
    received_at: datetime
    idempotency_key: str | None


@dataclass(frozen=True)
class Acceptance:
    """A concern to accept, with its receipt's secret hash when a receipt was asked for."""

    event: ConcernReceived
    receipt_sha256: str | None = None


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

    async def keep_raw_all(self, session: AsyncSession, arrived: Sequence[Arrived]) -> list[RawInput]: ...

    async def accept_all(
        self, session: AsyncSession, acceptances: Sequence[Acceptance], *, work: Work | None = None
    ) -> list[bool]: ...


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
        arrived = Arrived(school_id, channel, content_type, body, received_at, idempotency_key)
        [kept] = await self.keep_raw_all(session, [arrived])
        return kept

    async def keep_raw_all(self, session: AsyncSession, arrived: Sequence[Arrived]) -> list[RawInput]:
        """Store inputs exactly as received, one statement for all; a repeated idempotency key gives the earlier."""
        new_ids = [uuid.uuid4() for _ in arrived]
        inserted = await session.execute(
            KEEP_RAW_ALL,
            {
                "ids": new_ids,
                "schools": [a.school_id for a in arrived],
                "channels": [a.channel for a in arrived],
                "content_types": [a.content_type for a in arrived],
                "bodies": [a.body for a in arrived],
                "keys": [a.idempotency_key for a in arrived],
                "received": [a.received_at for a in arrived],
            },
        )
        kept = set(inserted.scalars())
        found = []
        for new_id, a in zip(new_ids, arrived, strict=True):
            if new_id in kept:
                found.append(RawInput(new_id, "received", None, None))
                continue
            parameters = {"school_id": a.school_id, "channel": a.channel, "idempotency_key": a.idempotency_key}
            earlier = (await session.execute(EARLIER_RAW, parameters)).one()
            found.append(RawInput(earlier.raw_input_id, earlier.status, earlier.reference, earlier.rejection_reason))
        return found

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
        [accepted] = await self.accept_all(session, [Acceptance(event, receipt_sha256)])
        return accepted

    async def accept_all(
        self, session: AsyncSession, acceptances: Sequence[Acceptance], *, work: Work | None = None
    ) -> list[bool]:
        """`accept` for many concerns in one statement; each False one wrote nothing (its reference was taken).
        With `work` (whose session this is), the outbox rows written are handed to its relay once it commits."""
        events = [a.event for a in acceptances]
        parameters = {
            "references": [e.payload.reference for e in events],
            "raw_ids": [uuid.UUID(e.payload.raw_input_id) for e in events],
            "received": [e.payload.received_at for e in events],
            "receipts": [a.receipt_sha256 for a in acceptances],
            **outbox_parameters(events),  # event ids, schools (each concern's), types, bodies, traceparents
        }
        linked = (await session.execute(ACCEPT_ALL, parameters)).all()
        if work is not None and linked:
            work.enqueued(written_rows([(row.position, row.event_id) for row in linked], parameters))
        done = {row.event_id for row in linked}
        return [e.event_id in done for e in events]
