"""Audit appends a batch in a few fixed statements, and its ledger is its inbox: a redelivered event is found in
the ledger by the append's own read and skipped, and no inbox row is written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from asyncpg import introspection
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.audit import store as store_module
from services.audit.app import AuditService
from services.audit.domain import verify_chain
from services.audit.settings import AuditSettings
from services.audit.store import ledger
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_keys import sealing_ledger
from tests.support.factories import concern_received
from tests.support.running import running

pytestmark = pytest.mark.integration
_TYPE_LOOKUPS = {introspection.INTRO_LOOKUP_TYPES, introspection.INTRO_LOOKUP_TYPES_13, introspection.TYPE_BY_NAME}
SCHOOL = "st-marks"


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement the engine's connections send while open: SQLAlchemy's, and those sent to asyncpg itself
    (the append's own, BEGIN and COMMIT), in order."""
    sent: list[str] = []

    def logged(record: Any) -> None:
        # not asyncpg's look-up of a new statement's types (once per connection, with JIT off around it)
        if record.query not in _TYPE_LOOKUPS and "set_config('jit'" not in record.query:
            sent.append(record.query)

    def through_sqlalchemy(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    def lent(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(logged)

    def returned(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.remove_query_logger(logged)

    sync = engine.sync_engine
    sa_event.listen(sync, "before_cursor_execute", through_sqlalchemy)
    sa_event.listen(sync.pool, "checkout", lent)
    sa_event.listen(sync.pool, "checkin", returned)
    try:
        yield sent
    finally:
        sa_event.remove(sync, "before_cursor_execute", through_sqlalchemy)
        sa_event.remove(sync.pool, "checkout", lent)
        sa_event.remove(sync.pool, "checkin", returned)


def concern() -> Any:
    reporter = {"role": "parent_carer", "name": "Pat Parentname", "contact": "pat@example.org"}
    return concern_received(school_id=SCHOOL, reporter=reporter)


async def test_a_batch_is_locked_read_and_inserted_with_the_ledger_as_its_inbox(settings: Settings) -> None:
    service = AuditService(settings, AuditSettings())
    runtime = service.runtime
    batch = [concern(), concern(), concern()]
    later = concern()
    async with running(runtime, subscribers=False):
        await service.ledger_edge.process(batch[:1])  # the school's key stored, the reporter's key made
        with statements_sent(runtime.engine) as sent:
            assert await service.ledger_edge.process(batch[1:]) == 2
        with statements_sent(runtime.engine) as again:
            await service.ledger_edge.process([*batch, later])  # a redelivery of the batch, and one event more
        async with transaction(runtime.sessions) as session:
            rows = (await session.execute(sa.select(ledger.c.event_id).order_by(ledger.c.position))).scalars().all()
            inbox = (await session.execute(sa.select(runtime.tables.inbox.c.event_id))).scalars().all()
            chain = await sealing_ledger().chain(session, school_id=SCHOOL)
    words = [statement.split()[0].lower().rstrip(";") for statement in sent]
    # BEGIN and the school's lock (SQLAlchemy logs the lock before it sends BEGIN), one read (the head, the events
    # chained already, the data keys), the reporter's key found and the new cases' keys stored, the insert, COMMIT:
    # no inbox claim, no separate head or key reads
    assert len(sent) == 6, "\n---\n".join(sent)
    assert sorted(words[:2]) == ["begin", "select"] and "pg_advisory_xact_lock" in " ".join(sent[:2])
    assert "audit.ledger" in sent[2] and "audit.data_keys" in sent[2]
    assert words[3:] == ["with", "insert", "commit"]
    assert not any("inbox" in statement for statement in sent + again)
    assert len(again) == 6, again  # the redelivered three were found chained in the read, and skipped
    assert list(rows) == [event.event_id for event in (*batch, later)] and not inbox
    assert [entry.school_sequence for entry in chain] == [1, 2, 3, 4] and verify_chain(chain) == []


async def test_the_batchs_read_finds_chained_events_by_id_not_by_a_pass_over_the_schools_chain(
    settings: Settings,
) -> None:
    # A ledger whose statistics are those of a fresh, fast-growing table (never analysed), as under load: with a
    # `school_id` condition beside the event ids, PostgreSQL ANDed the chain's index in, reading every entry of the
    # school on every batch (1 ms more a concern at 2,000 entries, and growing with the ledger).
    service = AuditService(settings, AuditSettings())
    runtime = service.runtime
    async with running(runtime, subscribers=False):
        async with transaction(runtime.sessions) as session:
            await session.execute(
                sa.text(
                    f"insert into {ledger.fullname} (school_id, school_sequence, event_id, event_type, aggregate_id, "
                    "correlation_id, occurred_at, previous_hash, entry_hash, entry) "
                    "select :school, n, gen_random_uuid(), 'concern.received', 'a', gen_random_uuid(), now(), '', '', "
                    "'\\x00' from generate_series(1, 5000) as n"
                ),
                {"school": SCHOOL},
            )
        async with runtime.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            # The plan a prepared statement settles on once PostgreSQL stops planning it for each call's values.
            await driver.execute("set plan_cache_mode = force_generic_plan")
            await driver.execute(f"prepare batch_read(text, uuid[], text[]) as {store_module._READ}")
            plan = await driver.fetchval(
                f"explain (analyze, format json) execute batch_read('{SCHOOL}', array['{uuid.uuid4()}'::uuid], '{{}}')"
            )
            await driver.execute("deallocate batch_read; reset plan_cache_mode")
    nodes = list(_plan_nodes((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]))
    school_index = [node for node in nodes if node.get("Index Name") == "ledger_school_id_school_sequence_key"]
    # The chain's index is read for its head alone: one row, newest first.
    assert all(node["Actual Rows"] <= 1 for node in school_index), school_index
    assert any(node.get("Index Name") == "ledger_event_id_key" for node in nodes)


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)
