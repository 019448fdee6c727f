"""Migration 0005 drops the ledger's `event` JSONB: a ledger grown and signed under 0004 verifies as before.

The rows are written as 0004's append wrote them (the JSONB cut from the entry bytes in the insert) and heads are
signed over them; after the upgrade every entry and head still verifies, the `audit.ledger_events` view gives
ad-hoc SQL the same event the JSONB held, the ledger is still append-only, and new entries chain on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from services.audit.checkpoint import Checkpointer
from services.audit.checks import verify_school
from services.audit.domain import verify_chain
from services.audit.heads import WitnessLog, load_or_create_signing_key
from services.audit.reads import views_of
from services.audit.store import SCHEMA
from shared.db import asyncpg_dsn, make_engine, session_factory, transaction
from shared.migrations import migrate
from shared.settings import Settings
from tests.support.audit_keys import sealing_ledger
from tests.support.audit_ledger import insert
from tests.support.factories import concern_received
from tests.support.ledgers import chain_of, synthetic_event

pytestmark = pytest.mark.integration

SCHOOL = "st-upgraded"
# How 0004's append wrote a row: the JSONB cut from the entry bytes by PostgreSQL in the same statement.
INSERT_0004 = """
    insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, correlation_id,
                              occurred_at, event, previous_hash, entry_hash, entry)
    select $1, $2, $3::uuid, $4, $5, $6::uuid, $7::timestamptz,
           convert_from(substring($10::bytea from 67 + length($2::bigint::text)), 'UTF8')::jsonb, $8, $9, $10
"""


def events() -> list[dict[str, object]]:
    made = [synthetic_event(sequence, school_id=SCHOOL) for sequence in range(1, 13)]
    made[4] = {**made[4], "payload": {"case_id": "case-0", "note": "Zoë’s “group chat” ✓ 😀", "step": 5}}
    return made


async def test_a_ledger_signed_under_0004_verifies_after_0005(settings: Settings, tmp_path: Path) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = session_factory(engine)
    key = load_or_create_signing_key(tmp_path / "key.pem")
    witness = WitnessLog(tmp_path / "witness.jsonl")
    checkpointer = Checkpointer(key=key, witness=witness, clock=lambda: datetime.now(UTC))
    chain = list(chain_of(events()))
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        await migrate(engine, service="audit", schema=SCHEMA, revision="0004")
        for entry in chain:
            await insert(connection, entry, school_id=SCHOOL, statement=INSERT_0004)
            if entry.school_sequence % 4 == 0:
                async with transaction(sessions) as session:
                    await checkpointer.checkpoint_once(session)
        before = await connection.fetch(
            "select school_sequence, event::text as event from audit.ledger order by school_sequence"
        )

        await migrate(engine, service="audit", schema=SCHEMA)

        async with transaction(sessions) as session:
            report = await verify_school(session, school_id=SCHOOL, witness=witness, public_key=key.public_key())
        assert report.ok and (report.entries, report.heads, report.anchored) == (12, 3, 12), report.problem
        after = await connection.fetch(
            "select school_sequence, event::text as event from audit.ledger_events order by school_sequence"
        )
        assert [json.loads(row["event"]) for row in after] == [json.loads(row["event"]) for row in before]
        assert [json.loads(row["event"]) for row in after] == [entry.event for entry in chain]
        columns = await connection.fetch(
            "select column_name from information_schema.columns where table_schema = 'audit' and table_name = 'ledger'"
        )
        assert "event" not in {row["column_name"] for row in columns}
        indexes = {
            row["indexname"]
            for row in await connection.fetch("select indexname from pg_indexes where tablename = 'ledger'")
        }
        assert "ledger_correlation" not in indexes and "ledger_views" in indexes
        with pytest.raises(asyncpg.PostgresError, match="append-only"):  # the record still refuses changes
            await connection.execute("update audit.ledger set entry = entry where school_sequence = 1")

        async with transaction(sessions) as session:  # and the append path chains on after the old rows
            await sealing_ledger().append(session, [concern_received(school_id=SCHOOL)])
        async with transaction(sessions) as session:
            await checkpointer.checkpoint_once(session)
        async with transaction(sessions) as session:
            grown = await sealing_ledger().chain(session, school_id=SCHOOL)
            report = await verify_school(session, school_id=SCHOOL, witness=witness, public_key=key.public_key())
        assert len(grown) == 13 and verify_chain(grown) == []
        assert report.ok and report.anchored == 13, report.problem
    finally:
        await connection.close()
        await engine.dispose()


async def test_who_read_finds_a_cases_views_through_their_index_in_a_generic_plan(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        await migrate(engine, service="audit", schema=SCHEMA)
    finally:
        await engine.dispose()
    query = views_of("case-1").compile(dialect=asyncpg_dialect(), compile_kwargs={"render_postcompile": True})
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        async with connection.transaction():  # as who-read sends it: the type inline, the case as $1
            await connection.execute(f"prepare views(text) as {query}")
            await connection.execute("set local enable_seqscan = off")
            await connection.execute("set local plan_cache_mode = force_generic_plan")  # the case unknown
            plan = await connection.fetch("explain execute views('case-1')")
    finally:
        await connection.close()
    assert "ledger_views" in "\n".join(row[0] for row in plan)
