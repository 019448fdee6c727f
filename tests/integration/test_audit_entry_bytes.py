"""The ledger's `entry` bytes are the record: verify proves them and every reader reads them (the only copy).

An insider who edits the bytes is caught by verify and named. Ledgers from before the bytes were stored are
backfilled from the canonical form of their stored events and verify as before (migration 0004; 0005 then drops
the JSONB copy, tests/integration/test_audit_migration_0005.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from services.audit.checks import verify_in_bulk
from services.audit.domain import canonical_json, entry_bytes, verify_chain
from services.audit.reading import stream_chain
from services.audit.reads import who_read
from services.audit.replay import stream_documents
from services.audit.store import SCHEMA, SqlLedger
from services.audit.verify import Report
from shared.db import asyncpg_dsn, make_engine, session_factory, transaction
from shared.migrations import migrate
from shared.settings import Settings
from tests.support.audit_keys import audit_keyring
from tests.support.audit_ledger import SCHOOL, Ledger, audit_ledger_in
from tests.support.ledgers import synthetic_chain

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_ledger(settings: Settings, tmp_path: Path) -> AsyncIterator[Ledger]:
    async with audit_ledger_in(settings, tmp_path) as ledger:
        yield ledger


async def what_readers_see(ledger: Ledger, sequence: int) -> list[dict[str, object]]:
    """Entry `sequence` as the export and checkpoint read it (stream_chain) and as replay and the console do."""
    async with transaction(ledger.sessions) as session:
        chained = [
            dict(e.event) async for e in stream_chain(session, school_id=SCHOOL) if e.school_sequence == sequence
        ]
        documents = stream_documents(session, keyring=audit_keyring(), school_id=SCHOOL)
        replayed = [document async for at, document in documents if at == sequence]
    return chained + replayed


async def test_editing_only_the_bytes_is_caught_by_verify_and_named(audit_ledger: Ledger) -> None:
    entry = await audit_ledger.connection.fetchval(
        "select entry from audit.ledger where school_id = $1 and school_sequence = 7", SCHOOL
    )
    edited = entry.replace(b"Synthetic action", b"Nothing happened")
    assert edited != entry

    async def edit(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "update audit.ledger set entry = $1 where school_id = $2 and school_sequence = 7", edited, SCHOOL
        )

    await audit_ledger.as_superuser(edit)
    seen = await what_readers_see(audit_ledger, 7)
    assert "Nothing happened" in json.dumps(seen)  # readers would now show the edit, so verify must catch it
    report = await audit_ledger.verify()
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == ("edited", 7), str(report.problem)


async def test_bytes_that_name_another_place_in_the_chain_are_caught(audit_ledger: Ledger) -> None:
    """The bytes of entry 8 moved into row 7 (hashes and all): the chain they name is not row 7's."""

    async def move(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "update audit.ledger as a set entry = b.entry, entry_hash = b.entry_hash from audit.ledger as b "
            "where a.school_id = $1 and b.school_id = $1 and a.school_sequence = 7 and b.school_sequence = 8",
            SCHOOL,
        )

    await audit_ledger.as_superuser(move)
    report = await audit_ledger.verify()
    assert report.problem is not None and report.problem.school_sequence == 7, str(report.problem)


async def test_who_read_reads_the_bytes_too(audit_ledger: Ledger) -> None:
    async with transaction(audit_ledger.sessions) as session:
        assert await who_read(session, keyring=audit_keyring(), case_id="case-1", school_id=SCHOOL) == []


async def test_a_ledger_from_before_the_bytes_is_backfilled_and_still_verifies(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    chain = list(synthetic_chain(12, school_id=SCHOOL))
    try:
        await migrate(engine, service="audit", schema=SCHEMA, revision="0003")
        connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            for entry in chain:
                event = entry.event
                await connection.execute(
                    "insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, "
                    "correlation_id, occurred_at, event, previous_hash, entry_hash) values "
                    "($1, $2, $3::uuid, $4, $5, $6::uuid, $7::timestamptz, $8::jsonb, $9, $10)",
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
            await migrate(engine, service="audit", schema=SCHEMA)
            rows = await connection.fetch(
                "select school_sequence, entry from audit.ledger where school_id = $1 order by school_sequence", SCHOOL
            )
            with pytest.raises(asyncpg.PostgresError, match="append-only"):  # the trigger is back on
                await connection.execute("update audit.ledger set entry = entry where school_sequence = 1")
            async with transaction(session_factory(engine)) as session:
                reread = await SqlLedger(sealer=audit_keyring()).chain(session, school_id=SCHOOL)
        finally:
            await connection.close()
    finally:
        await engine.dispose()
    assert [bytes(r["entry"]) for r in rows] == [
        entry_bytes(e.previous_hash, e.school_sequence, canonical_json(e.event)) for e in chain
    ]
    assert verify_chain(reread) == [] and [e.event for e in reread] == [e.event for e in chain]


async def test_the_bulk_path_passes_an_untouched_ledger_and_hands_any_tamper_to_the_naming_verifier(
    audit_ledger: Ledger,
) -> None:
    async def bulk() -> object:
        async with transaction(audit_ledger.sessions) as session:
            return await verify_in_bulk(
                session, school_id=SCHOOL, witness=audit_ledger.witness, public_key=audit_ledger.key.public_key()
            )

    assert bulk_report(await bulk()) == (20, 5, 20)

    async def edit(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "update audit.ledger set entry_hash = upper(entry_hash) where school_id = $1 and school_sequence = 3",
            SCHOOL,
        )

    await audit_ledger.as_superuser(edit)
    assert await bulk() is None  # not decided here...
    report = await audit_ledger.verify()  # ...but by the verifier that names it
    assert report.problem is not None and report.problem.school_sequence == 3, str(report.problem)


def bulk_report(report: object) -> tuple[int, int, int]:
    assert isinstance(report, Report) and report.ok
    return report.entries, report.heads, report.anchored


async def test_a_cases_events_are_found_by_the_bytes(audit_ledger: Ledger) -> None:
    async def about(case_id: str) -> list[int]:
        async with transaction(audit_ledger.sessions) as session:
            documents = stream_documents(session, keyring=audit_keyring(), school_id=SCHOOL, case_id=case_id)
            return [sequence async for sequence, _ in documents]

    assert await about("case-0") == list(range(1, 10))
    entry = await audit_ledger.connection.fetchval(
        "select entry from audit.ledger where school_id = $1 and school_sequence = 15", SCHOOL
    )

    async def name(connection: asyncpg.Connection) -> None:  # entry 15 is case-1's; its payload now names case-0
        await connection.execute(
            "update audit.ledger set entry = $1 where school_id = $2 and school_sequence = 15",
            entry.replace(b'"case_id":"case-1"', b'"case_id":"case-0"'),
            SCHOOL,
        )

    await audit_ledger.as_superuser(name)
    assert await about("case-0") == [*range(1, 10), 15]  # no column says so: only the bytes


async def test_a_row_outside_the_sequences_is_handed_to_the_naming_verifier(audit_ledger: Ledger) -> None:
    async def smuggle(connection: asyncpg.Connection) -> None:  # a copy of entry 3 numbered 0: before the chain
        await connection.execute(
            "insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, "
            "correlation_id, occurred_at, previous_hash, entry_hash, entry) "
            "select school_id, 0, gen_random_uuid(), event_type, aggregate_id, correlation_id, occurred_at, "
            "previous_hash, entry_hash, entry from audit.ledger where school_id = $1 and school_sequence = 3",
            SCHOOL,
        )

    await audit_ledger.as_superuser(smuggle)
    async with transaction(audit_ledger.sessions) as session:
        bulk = await verify_in_bulk(
            session, school_id=SCHOOL, witness=audit_ledger.witness, public_key=audit_ledger.key.public_key()
        )
    assert bulk is None
    report = await audit_ledger.verify()  # replay would show that row: verify must not pass it
    assert report.problem is not None and (report.problem.kind, report.problem.school_sequence) == ("inserted", 1)
