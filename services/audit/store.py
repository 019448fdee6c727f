"""The audit schema: the ledger table and its queries."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
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
    sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("school_sequence", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("aggregate_id", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Uuid, nullable=False),
    sa.Column("trace_id", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("event", JSONB, nullable=False),
    sa.Column("previous_hash", sa.Text, nullable=False),
    sa.Column("entry_hash", sa.Text, nullable=False),
    sa.Column("appended_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("school_id", "school_sequence"),
    sa.Index("ledger_correlation", "correlation_id"),
)


class SqlLedger:
    """Appends events to the per-school hash chains."""

    async def append(self, session: AsyncSession, events: Sequence[Event[Any]]) -> dict[str, int]:
        """Append events, in the order given, at the end of their schools' chains; returns each school's new head.

        Per school: one lock (one writer per chain, whichever audit instance holds the batch), one read of the
        chain's head, one multi-row insert.
        """
        by_school: dict[str, list[Event[Any]]] = {}
        for event in events:
            by_school.setdefault(event.school_id, []).append(event)
        heads: dict[str, int] = {}
        for school_id in sorted(by_school):  # a fixed order, so two instances never wait on each other's locks
            heads[school_id] = await self._append_school(session, school_id, by_school[school_id])
        return heads

    async def _append_school(self, session: AsyncSession, school_id: str, events: list[Event[Any]]) -> int:
        await session.execute(
            sa.text("select pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(f"ledger:{school_id}".encode())}
        )
        last = (
            await session.execute(
                sa.select(ledger.c.school_sequence, ledger.c.entry_hash)
                .where(ledger.c.school_id == school_id)
                .order_by(ledger.c.school_sequence.desc())
                .limit(1)
            )
        ).first()
        sequence, previous = (last.school_sequence, last.entry_hash) if last else (0, GENESIS)
        rows = []
        for event in events:
            sequence += 1
            document = event.model_dump(mode="json")
            digest = entry_hash(previous_hash=previous, school_sequence=sequence, event=document)
            rows.append(
                {
                    "school_id": school_id,
                    "school_sequence": sequence,
                    "event_id": event.event_id,
                    "event_type": event.type,
                    "aggregate_id": event.aggregate_id,
                    "correlation_id": event.correlation_id,
                    "trace_id": trace_id_of(event.traceparent),
                    "occurred_at": event.occurred_at,
                    "event": document,
                    "previous_hash": previous,
                    "entry_hash": digest,
                }
            )
            previous = digest
        await session.execute(sa.insert(ledger), rows)
        return sequence

    async def chain(self, session: AsyncSession, *, school_id: str) -> list[ChainEntry]:
        """The school's whole chain in order, for verification."""
        rows = await session.execute(
            sa.select(ledger.c.school_sequence, ledger.c.event, ledger.c.previous_hash, ledger.c.entry_hash)
            .where(ledger.c.school_id == school_id)
            .order_by(ledger.c.school_sequence)
        )
        return [ChainEntry(r.school_sequence, r.event, r.previous_hash, r.entry_hash) for r in rows]
