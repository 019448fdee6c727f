"""Audit against real NATS + PostgreSQL: every event once, in a hash chain the database will not let change."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa

from services.audit.app import create_app
from services.audit.domain import verify_chain
from services.audit.store import ledger, locked_driver, school_lock_key
from shared.db import asyncpg_dsn, transaction
from shared.settings import Settings
from tests.support.audit_keys import sealing_ledger
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, running, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def ledger_rows(runtime, school_id: str = "st-marks") -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(ledger).where(ledger.c.school_id == school_id))).all())


async def test_the_same_event_twice_is_recorded_once(settings: Settings) -> None:
    _, runtime = create_app(settings)
    event = concern_received()
    async with running(runtime), jetstream(settings) as (_, js):
        first = await publish_raw(js, settings, event)
        again_same_id = await publish_raw(js, settings, event)
        again_new_msg_id = await publish_raw(js, settings, event, msg_id=f"{event.event_id}-redelivered")
        assert not first.duplicate and again_same_id.duplicate and not again_new_msg_id.duplicate
        rows = await eventually(lambda: ledger_rows(runtime), until=lambda rows: len(rows) >= 1, what="ledger row")
        # Give the second copy (a different Nats-Msg-Id, so the broker delivered it) time to be consumed.
        info = await eventually(
            lambda: js.consumer_info(settings.stream_name, "audit-ledger"),
            until=lambda info: info.num_ack_pending == 0 and info.num_pending == 0,
            what="audit consumer to drain",
        )
        assert info.delivered.stream_seq == 2
        rows = await ledger_rows(runtime)
    assert [row.event_id for row in rows] == [event.event_id]


async def test_the_chain_verifies_and_the_database_refuses_changes(settings: Settings) -> None:
    _, runtime = create_app(settings)
    events = [concern_received() for _ in range(5)]
    async with running(runtime), jetstream(settings) as (_, js):
        for event in events:
            await publish_raw(js, settings, event)
        await eventually(lambda: ledger_rows(runtime), until=lambda rows: len(rows) == 5, what="five rows")
        async with transaction(runtime.sessions) as session:
            chain = await sealing_ledger().chain(session, school_id="st-marks")
    assert [entry.school_sequence for entry in chain] == [1, 2, 3, 4, 5]
    assert verify_chain(chain) == []
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        for statement in (
            "update audit.ledger set event_type = 'x'",
            "delete from audit.ledger",
            "truncate audit.ledger",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await connection.execute(statement)
        assert await connection.fetchval("select count(*) from audit.ledger") == 5
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"type": "concern.received", "version": 99}', "unknown event concern.received v99"),
        (
            b'{"type": "concern.received", "version": 1, "school_id": "st-marks"}',
            "malformed concern.received",
        ),
    ],
)
async def test_a_bad_event_is_parked_with_its_reason(settings: Settings, body: bytes, reason: str) -> None:
    _, runtime = create_app(settings)
    event = concern_received()
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, event, body=body)
        dead = f"{settings.stream_name}_DEAD"
        await eventually(lambda: stream_messages(js, dead), until=lambda n: n == 1, what="a dead letter")
        parked = await js.get_last_msg(dead, f"{settings.subject_root}-dead.audit-ledger")
        assert parked.data == body
        assert parked.headers is not None and reason in parked.headers["Safeguard-Reason"]
        # The bad event itself never reaches the chain; the record only notes that something was parked.
        assert [row.event_type for row in await ledger_rows(runtime)] in ([], ["ops.dead_lettered"])


@pytest.mark.parametrize("begun", [False, True], ids=["lock is the first statement", "after another statement"])
async def test_an_append_holds_its_school_lock_until_it_commits(settings: Settings, begun: bool) -> None:
    # The append path sends its statements to the driver: the lock must still be taken inside the session's
    # transaction (which SQLAlchemy begins lazily), not in a statement of its own that releases it at once.
    _, runtime = create_app(settings)
    key = school_lock_key("st-locked")
    async with running(runtime):
        other = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            async with transaction(runtime.sessions) as session:
                if begun:
                    await session.execute(sa.text("select 1"))
                await locked_driver(session, school_id="st-locked")
                assert not await other.fetchval("select pg_try_advisory_xact_lock($1)", key)
            assert await other.fetchval("select pg_try_advisory_xact_lock($1)", key)
        finally:
            await other.close()
