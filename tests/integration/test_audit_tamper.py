"""An insider with PostgreSQL's superuser rewrites the ledger; verify catches it and names the entry.

The triggers refuse UPDATE/DELETE/TRUNCATE, but `SET LOCAL session_replication_role = replica` switches them
off for a superuser, and hashes can be recomputed so the chain looks whole. What the insider cannot reach is the
signing key and the witness log, both files outside the database: checkpoints were signed every 4 entries
while the ledger grew normally, then each scenario rewrites it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.checkpoint import Checkpointer
from services.audit.checks import verify_ledger, verify_school
from services.audit.domain import ChainEntry
from services.audit.heads import WitnessLog, WitnessRecord, load_or_create_signing_key, sign_head
from services.audit.store import SCHEMA
from services.audit.verify import Report
from shared.db import asyncpg_dsn, make_engine, session_factory, transaction
from shared.migrations import migrate
from shared.settings import Settings
from tests.support.ledgers import chain_of, synthetic_chain, synthetic_event

pytestmark = pytest.mark.integration
SCHOOL = "st-tamper"
INSERT = """
    insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, correlation_id,
                              occurred_at, event, previous_hash, entry_hash)
    values ($1, $2, $3::uuid, $4, $5, $6::uuid, $7::timestamptz, $8::jsonb, $9, $10)
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
            "select school_sequence, event, previous_hash, entry_hash from audit.ledger "
            "where school_id = $1 order by school_sequence",
            SCHOOL,
        )
        return [ChainEntry(r[0], json.loads(r[1]), r[2], r[3]) for r in records]

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


async def insert(connection: asyncpg.Connection, entry: ChainEntry) -> None:
    event = entry.event
    await connection.execute(
        INSERT,
        SCHOOL,
        entry.school_sequence,
        event["event_id"],
        event["type"],
        event["aggregate_id"],
        event["correlation_id"],
        datetime.fromisoformat(str(event["occurred_at"])),
        json.dumps(event),
        entry.previous_hash,
        entry.entry_hash,
    )


@pytest.fixture
async def audit_ledger(settings: Settings, tmp_path: Path) -> AsyncIterator[Ledger]:
    engine = make_engine(settings.database_url, pool_size=1)
    await migrate(engine, service="audit", schema=SCHEMA)
    key = load_or_create_signing_key(tmp_path / "key.pem")
    witness = WitnessLog(tmp_path / "witness.jsonl")
    checkpointer = Checkpointer(key=key, witness=witness, clock=lambda: datetime.now(UTC))
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    ledger = Ledger(session_factory(engine), connection, checkpointer, witness, key)
    await ledger.append(list(synthetic_chain(20, school_id=SCHOOL)))
    yield ledger
    await connection.close()
    await engine.dispose()


def events_of(rows: list[ChainEntry]) -> list[dict[str, object]]:
    return [dict(row.event) for row in rows]


async def test_the_untouched_ledger_verifies_and_every_head_is_anchored(audit_ledger: Ledger) -> None:
    report = await audit_ledger.verify()
    assert report.ok, report.problem
    assert (report.entries, report.heads, report.anchored) == (20, 5, 20)


async def test_replication_role_bypass_edit_with_recomputed_hashes_is_caught(audit_ledger: Ledger) -> None:
    """Exactly the attack in the issue: edit an entry, recompute every hash after it, keep appending."""
    rows = await audit_ledger.rows()
    edited = events_of(rows)
    edited[6] = {**edited[6], "payload": {"note": "nothing happened"}}
    recomputed = list(chain_of(edited))

    async def edit(connection: asyncpg.Connection) -> None:
        for entry in recomputed[6:]:
            await connection.execute(
                "update audit.ledger set event = $1::jsonb, previous_hash = $2, entry_hash = $3 "
                "where school_id = $4 and school_sequence = $5",
                json.dumps(entry.event),
                entry.previous_hash,
                entry.entry_hash,
                SCHOOL,
                entry.school_sequence,
            )

    await audit_ledger.as_superuser(edit)
    # The chain alone is whole again, and new entries chain on normally...
    more = list(chain_of([synthetic_event(21, school_id=SCHOOL)], first=21, previous=recomputed[-1].entry_hash))
    await audit_ledger.append(more)
    await audit_ledger.checkpoint()
    # ...but checkpointing refuses to sign over it, and verify names the entry.
    assert SCHOOL in audit_ledger.checkpointer.broken
    report = await audit_ledger.verify()
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == ("edited", 7), str(report.problem)


@pytest.mark.parametrize(
    ("attack", "kind", "sequence"),
    [
        ("delete", "missing", 7),
        ("delete and renumber", "missing", 7),
        ("swap", "reordered", 7),
        ("truncate the tail", "truncated", 14),
        ("insert", "inserted", 7),
    ],
)
async def test_each_rewrite_is_caught_and_named(audit_ledger: Ledger, attack: str, kind: str, sequence: int) -> None:
    events = events_of(await audit_ledger.rows())
    if attack == "delete":
        await audit_ledger.as_superuser(
            lambda c: c.execute("delete from audit.ledger where school_id = $1 and school_sequence = 7", SCHOOL)
        )
    elif attack == "delete and renumber":
        await audit_ledger.rewrite([*events[:6], *events[7:]])
    elif attack == "swap":
        await audit_ledger.rewrite([*events[:6], events[7], events[6], *events[8:]])
    elif attack == "truncate the tail":
        await audit_ledger.as_superuser(
            lambda c: c.execute("delete from audit.ledger where school_id = $1 and school_sequence > 13", SCHOOL)
        )
    else:
        await audit_ledger.rewrite([*events[:6], synthetic_event(999, school_id=SCHOOL), *events[6:]])
    report = await audit_ledger.verify()
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == (kind, sequence), str(report.problem)


async def test_a_head_signed_with_another_key_is_caught(audit_ledger: Ledger) -> None:
    records = list(audit_ledger.witness.records())
    impostor = Ed25519PrivateKey.generate()
    records[2] = WitnessRecord(signed=sign_head(records[2].signed.head, key=impostor), entries=records[2].entries)
    audit_ledger.witness.path.write_text("".join(record.to_line() for record in records))
    report = await audit_ledger.verify()
    assert report.problem is not None and report.problem.kind == "forged head", str(report.problem)
    assert "12 entries" in report.problem.detail


async def test_verify_covers_every_school_the_witness_knows(audit_ledger: Ledger) -> None:
    async with transaction(audit_ledger.sessions) as session:
        reports = await verify_ledger(session, witness=audit_ledger.witness, public_key=audit_ledger.key.public_key())
    assert [(r.school_id, r.ok) for r in reports] == [(SCHOOL, True)]
