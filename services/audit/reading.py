"""Read-only streaming of the ledger table, one school at a time, in chain order and constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import ChainEntry
from services.audit.store import ledger

CHUNK = 10_000


async def schools_with_entries(session: AsyncSession) -> dict[str, int]:
    """Each school's highest sequence in the ledger."""
    rows = await session.execute(
        sa.select(ledger.c.school_id, sa.func.max(ledger.c.school_sequence)).group_by(ledger.c.school_id)
    )
    return {school_id: int(last) for school_id, last in rows}


async def stream_chain(
    session: AsyncSession, *, school_id: str, after: int = 0, through: int | None = None
) -> AsyncIterator[ChainEntry]:
    """The school's entries with sequence > `after` (and <= `through`), fetched in chunks from a cursor."""
    query = (
        sa.select(ledger.c.school_sequence, ledger.c.event, ledger.c.previous_hash, ledger.c.entry_hash)
        .where(ledger.c.school_id == school_id, ledger.c.school_sequence > after)
        .order_by(ledger.c.school_sequence)
    )
    if through is not None:
        query = query.where(ledger.c.school_sequence <= through)
    result = await session.stream(query, execution_options={"yield_per": CHUNK})
    async for rows in result.partitions():  # one await a chunk: a row at a time costs a greenlet switch each
        for sequence, event, previous_hash, stored in rows:
            yield ChainEntry(sequence, event, previous_hash, stored)
