"""A real audit ledger in a test's PostgreSQL, grown and checkpointed normally, that a test can then rewrite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.checkpoint import Checkpointer
from services.audit.checks import verify_school
from services.audit.domain import ChainEntry, event_of
from services.audit.heads import WitnessLog, load_or_create_signing_key
from services.audit.store import SCHEMA
from services.audit.verify import Report
from shared.db import asyncpg_dsn, make_engine, session_factory, transaction
from shared.migrations import migrate
from shared.settings import Settings
from tests.support.ledgers import chain_of, synthetic_chain

SCHOOL = "st-tamper"
INSERT = """
    insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, correlation_id,
                              occurred_at, previous_hash, entry_hash, entry)
    values ($1, $2, $3::uuid, $4, $5, $6::uuid, $7::timestamptz, $8, $9, $10)
"""


@dataclass
class Ledger:
    """The audit schema in this test's database, its key and witness log, and a superuser connection."""

    sessions: async_sessionmaker[AsyncSession]
    connection: asyncpg.Connection
    checkpointer: Checkpointer
    witness: WitnessLog
    key: Ed25519PrivateKey

    async def append(self, entries: list[ChainEntry]) -> None:
        """Append the way audit does (triggers on), checkpointing every 4 entries."""
        for entry in entries:
            await insert(self.connection, entry)
            if entry.school_sequence % 4 == 0:
                await self.checkpoint()

    async def checkpoint(self) -> None:
        async with transaction(self.sessions) as session:
            await self.checkpointer.checkpoint_once(session)

    async def rows(self) -> list[ChainEntry]:
        records = await self.connection.fetch(
            "select school_sequence, entry, previous_hash, entry_hash from audit.ledger "
            "where school_id = $1 order by school_sequence",
            SCHOOL,
        )
        return [ChainEntry(r[0], event_of(r[1]), r[2], r[3]) for r in records]

    async def as_superuser(self, statements: Callable[[asyncpg.Connection], object]) -> None:
        """Run the insider's statements with the append-only triggers switched off for one transaction."""
        async with self.connection.transaction():
            await self.connection.execute("set local session_replication_role = replica")
            await statements(self.connection)  # type: ignore[misc]

    async def rewrite(self, events: list[dict[str, object]]) -> None:
        """Replace the school's ledger with a chain recomputed over these events."""

        async def replace(connection: asyncpg.Connection) -> None:
            await connection.execute("delete from audit.ledger where school_id = $1", SCHOOL)
            for entry in chain_of(events):
                await insert(connection, entry)

        await self.as_superuser(replace)

    async def verify(self) -> Report:
        async with transaction(self.sessions) as session:
            return await verify_school(
                session, school_id=SCHOOL, witness=self.witness, public_key=self.key.public_key()
            )


async def insert(
    connection: asyncpg.Connection, entry: ChainEntry, *, school_id: str = SCHOOL, statement: str = INSERT
) -> None:
    """One row as audit writes it (`statement`: another revision's insert, its parameters in the same order)."""
    event = entry.event
    await connection.execute(
        statement,
        school_id,
        entry.school_sequence,
        event["event_id"],
        event["type"],
        event["aggregate_id"],
        event["correlation_id"],
        datetime.fromisoformat(str(event["occurred_at"])),
        entry.previous_hash,
        entry.entry_hash,
        entry.hashed(),
    )


@asynccontextmanager
async def audit_ledger_in(settings: Settings, tmp_path: Path, *, entries: int = 20) -> AsyncIterator[Ledger]:
    """The audit schema migrated, `entries` appended with a head signed every 4, and a superuser connection."""
    engine = make_engine(settings.database_url, pool_size=1)
    await migrate(engine, service="audit", schema=SCHEMA)
    key = load_or_create_signing_key(tmp_path / "key.pem")
    witness = WitnessLog(tmp_path / "witness.jsonl")
    checkpointer = Checkpointer(key=key, witness=witness, clock=lambda: datetime.now(UTC))
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    ledger = Ledger(session_factory(engine), connection, checkpointer, witness, key)
    await ledger.append(list(synthetic_chain(entries, school_id=SCHOOL)))
    try:
        yield ledger
    finally:
        await connection.close()
        await engine.dispose()


@asynccontextmanager
async def migrated_audit(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database with audit's schema migrated (one pooled connection)."""
    engine = make_engine(settings.database_url, pool_size=1)
    await migrate(engine, service="audit", schema=SCHEMA)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
