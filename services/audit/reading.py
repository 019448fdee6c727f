"""Read-only streaming of the ledger table, one school at a time, in chain order and constant memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from operator import itemgetter
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import ChainEntry, stored_entry
from services.audit.store import ledger

CHUNK = 10_000
ENTRY_CHUNK = 16_384  # entries verify reads and hashes at a time
Chunk = tuple[int, list[int], list[bytes], list[str]]  # first sequence, sequences, entry bytes, stored hashes


async def schools_with_entries(session: AsyncSession) -> dict[str, int]:
    """Each school's highest sequence in the ledger."""
    rows = await session.execute(
        sa.select(ledger.c.school_id, sa.func.max(ledger.c.school_sequence)).group_by(ledger.c.school_id)
    )
    return {school_id: int(last) for school_id, last in rows}


async def last_sequence(session: AsyncSession, *, school_id: str) -> int:
    """The school's highest sequence (an index probe; 0 when it has no entries)."""
    last = await session.scalar(sa.select(sa.func.max(ledger.c.school_sequence)).where(ledger.c.school_id == school_id))
    return int(last or 0)


async def stream_chain(
    session: AsyncSession,
    *,
    school_id: str,
    after: int | None = None,
    through: int | None = None,
    decode: bool = True,
    chunk: int = CHUNK,
) -> AsyncIterator[ChainEntry]:
    """The school's entries with sequence > `after` (every one, even numbered below 1, when None; and <= `through`),
    fetched in chunks from a cursor.

    Each is read from its stored entry bytes (the bytes its hash covers), never from the `event` JSONB; its
    event is decoded from them unless `decode` is False (verifying needs only the bytes). `chunk` rows are held
    at a time."""
    query = (
        sa.select(ledger.c.school_sequence, ledger.c.entry, ledger.c.entry_hash)
        .where(ledger.c.school_id == school_id)
        .order_by(ledger.c.school_sequence)
    )
    if after is not None:
        query = query.where(ledger.c.school_sequence > after)
    if through is not None:
        query = query.where(ledger.c.school_sequence <= through)
    result = await session.stream(query, execution_options={"yield_per": chunk})
    async for rows in result.partitions():  # one await a chunk: a row at a time costs a greenlet switch each
        for sequence, entry, stored in rows:
            yield stored_entry(sequence, entry, stored, decode=decode)


def chunk_query(table: str) -> str:
    return (
        f"select school_sequence, entry, entry_hash from {table} "
        "where school_id = $1 and school_sequence between $2 and $3 order by school_sequence"
    )


def as_chunk(first: int, rows: list[Any]) -> Chunk:
    """A chunk's rows as columns (each a list made in C, no Python loop)."""
    return first, list(map(itemgetter(0), rows)), list(map(itemgetter(1), rows)), list(map(itemgetter(2), rows))


async def entry_chunks(
    connection: asyncpg.Connection, *, school_id: str, last: int, table: str = ledger.fullname
) -> AsyncIterator[Chunk]:
    """Sequences 1..`last` of the school in chunks, the next one read while the caller works on this one."""
    query = chunk_query(table)
    starts = range(1, last + 1, ENTRY_CHUNK)
    if not starts:
        return
    pending = asyncio.ensure_future(connection.fetch(query, school_id, 1, min(ENTRY_CHUNK, last)))
    for index, first in enumerate(starts):
        rows = await pending
        if index + 1 < len(starts):
            following = starts[index + 1]
            pending = asyncio.ensure_future(
                connection.fetch(query, school_id, following, min(following + ENTRY_CHUNK - 1, last))
            )
            await asyncio.sleep(0)  # let it reach the server before this chunk is hashed
        yield as_chunk(first, rows)


async def rows_outside(
    connection: asyncpg.Connection, *, school_id: str, last: int, table: str = ledger.fullname
) -> bool:
    """Whether the school has a row whose sequence is not in 1..`last` (index probes, not a count of every row:
    a chunk's own check catches a duplicate inside the range)."""
    return bool(
        await connection.fetchval(
            f"select exists (select 1 from {table} where school_id = $1 and school_sequence < 1) "
            f"or exists (select 1 from {table} where school_id = $1 and school_sequence > $2) "
            f"or exists (select 1 from {table} where school_id = $1 and school_sequence is null)",
            school_id,
            last,
        )
    )
