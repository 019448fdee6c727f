"""The audit schema: the ledger table and its queries."""

from __future__ import annotations

import zlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import GENESIS, ChainEntry, entry_hash
from shared.contracts.envelope import Event
from shared.tracing import trace_id_of

SCHEMA = "audit"
metadata = sa.MetaData(schema=SCHEMA)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("school_sequence", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("aggregate_id", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Uuid, nullable=False),
    sa.Column("trace_id", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("event", JSONB, nullable=False),
    sa.Column("previous_hash", sa.Text, nullable=False),
    sa.Column("entry_hash", sa.Text, nullable=False),
    sa.Column("appended_at", sa.DateTime(timezone=True)),
)


class SqlLedger:
    """Appends events to the per-school hash chain."""

    async def append(self, session: AsyncSession, event: Event[Any]) -> int:
        """Append one event at the end of its school's chain; returns its sequence in that chain."""
        # One writer per school chain at a time, whichever audit instance holds the event.
        await session.execute(
            sa.text("select pg_advisory_xact_lock(:key)"),
            {"key": zlib.crc32(f"ledger:{event.school_id}".encode())},
        )
        last = (
            await session.execute(
                sa.select(ledger.c.school_sequence, ledger.c.entry_hash)
                .where(ledger.c.school_id == event.school_id)
                .order_by(ledger.c.school_sequence.desc())
                .limit(1)
            )
        ).first()
        sequence = (last.school_sequence + 1) if last else 1
        previous = last.entry_hash if last else GENESIS
        document = event.model_dump(mode="json")
        await session.execute(
            sa.insert(ledger).values(
                school_id=event.school_id,
                school_sequence=sequence,
                event_id=event.event_id,
                event_type=event.type,
                aggregate_id=event.aggregate_id,
                correlation_id=event.correlation_id,
                trace_id=trace_id_of(event.traceparent),
                occurred_at=event.occurred_at,
                event=document,
                previous_hash=previous,
                entry_hash=entry_hash(previous_hash=previous, school_sequence=sequence, event=document),
            )
        )
        return sequence

    async def chain(self, session: AsyncSession, *, school_id: str) -> list[ChainEntry]:
        """The school's whole chain in order, for verification."""
        rows = await session.execute(
            sa.select(ledger.c.school_sequence, ledger.c.event, ledger.c.previous_hash, ledger.c.entry_hash)
            .where(ledger.c.school_id == school_id)
            .order_by(ledger.c.school_sequence)
        )
        return [ChainEntry(r.school_sequence, r.event, r.previous_hash, r.entry_hash) for r in rows]
