"""Replay rebuilds routing's case index from the audit ledger alone, and it equals the one routing keeps live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.kek import load_or_create_kek
from services.audit.keyring import KeyRing
from services.audit.replay import CASE_INDEX_COLUMNS, rebuild_case_index
from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.contracts.envelope import utc_now
from shared.db import make_engine, session_factory, transaction
from shared.subjects import Subjects
from tests.e2e.conftest import System
from tests.e2e.test_concern_end_to_end import report
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def live_index(system: System) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(system.dsn)
    try:
        rows = await connection.fetch(
            f"select {', '.join(CASE_INDEX_COLUMNS)} from routing.cases where school_id = 'st-marks' order by case_id"
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


async def rebuilt_index(system: System) -> list[dict[str, Any]]:
    engine = make_engine(system.settings.database_url, pool_size=1)
    try:
        async with transaction(session_factory(engine)) as session:
            return await _rebuilt(session, system)
    finally:
        await engine.dispose()


async def _rebuilt(session: AsyncSession, system: System) -> list[dict[str, Any]]:
    # The KEK the audit process seals with: replay opens what it needs to fold the cases.
    keyring = KeyRing(load_or_create_kek(Path(system.env["SAFEGUARD_AUDIT_KEK_PATH"])))
    return await rebuild_case_index(session, keyring=keyring, school_id="st-marks")


async def acknowledge(system: System, case_id: str) -> dict[str, Any]:
    client = await nats.connect(system.settings.nats_url)
    try:
        command = {
            "command": "acknowledge",
            "case_id": case_id,
            "school_id": "st-marks",
            # Signed as the operator CLI signs: routing looks the person's role up in the policy.
            "assertion": issue(
                load_or_create_issuer_key(system.settings.actor_keys_dir, issuer="operator"),
                issuer="operator",
                person_id="s-bird",
                school_id="st-marks",
                now=utc_now(),
            ),
        }
        subject = Subjects.from_settings(system.settings).command("routing", "case")
        reply = await client.request(subject, json.dumps(command).encode(), timeout=10)
    finally:
        await client.close()
    return dict(json.loads(reply.data))


async def test_the_case_index_rebuilt_from_the_ledger_equals_routings_live_one(system: System) -> None:
    for _ in range(3):
        await report(system)
    live = await eventually(lambda: live_index(system), until=lambda rows: len(rows) == 3, what="three cases")
    reply = await acknowledge(system, live[0]["case_id"])
    assert reply["ok"], reply
    live = await eventually(
        lambda: live_index(system), until=lambda rows: rows[0]["status"] == "in_progress", what="acknowledged"
    )

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await rebuilt_index(system), await live_index(system)

    rebuilt, live = await eventually(
        both, until=lambda pair: pair[0] == pair[1], timeout=60, what="the rebuilt index to catch up with the live one"
    )
    assert len(rebuilt) == 3
    assert [row["status"] for row in rebuilt].count("in_progress") == 1
    assert all(row["version"] >= 2 for row in rebuilt)
    # The chain follows the stream: each school's entries carry rising stream sequences.
    assert await stream_sequences(system) == sorted(await stream_sequences(system))


async def stream_sequences(system: System) -> list[int]:
    connection = await asyncpg.connect(system.dsn)
    try:
        rows = await connection.fetch(
            "select stream_sequence from audit.ledger where school_id = 'st-marks' order by school_sequence"
        )
    finally:
        await connection.close()
    return [row["stream_sequence"] for row in rows]
