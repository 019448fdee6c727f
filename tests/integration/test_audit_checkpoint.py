"""Checkpointing against real PostgreSQL and NATS: heads follow each other across restarts and reach their stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.audit.checkpoint import Checkpointer, publish_checkpoint
from services.audit.cli import audit_app
from shared.contracts import parse_event
from shared.db import transaction
from shared.messaging import ensure_streams, make_broker
from shared.settings import Settings, get_settings
from shared.subjects import Subjects
from tests.support.audit_ledger import SCHOOL, Ledger, audit_ledger_in
from tests.support.ledgers import chain_of, synthetic_event
from tests.support.running import jetstream

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_ledger(settings: Settings, tmp_path: Path) -> AsyncIterator[Ledger]:
    async with audit_ledger_in(settings, tmp_path) as ledger:
        yield ledger


async def test_after_a_restart_the_next_head_follows_the_last_one_in_the_witness_log(audit_ledger: Ledger) -> None:
    last = audit_ledger.witness.latest_heads()[SCHOOL]
    restarted = Checkpointer(key=audit_ledger.key, witness=audit_ledger.witness, clock=lambda: datetime.now(UTC))
    async with transaction(audit_ledger.sessions) as session:
        assert await restarted.checkpoint_once(session) == []  # rebuilt and checked, but nothing new to sign
    tip = (await audit_ledger.rows())[-1].entry_hash
    await audit_ledger.append(list(chain_of([synthetic_event(21, school_id=SCHOOL)], first=21, previous=tip)))
    async with transaction(audit_ledger.sessions) as session:
        [event] = await restarted.checkpoint_once(session)
    assert (event.payload.tree_size, event.payload.previous) == (21, last.ref)
    report = await audit_ledger.verify()
    assert report.ok and report.anchored == 21, report.problem


async def test_a_checkpoint_is_published_on_the_audit_stream_once(audit_ledger: Ledger, settings: Settings) -> None:
    subjects = Subjects.from_settings(settings)
    tip = (await audit_ledger.rows())[-1].entry_hash
    await audit_ledger.append(list(chain_of([synthetic_event(21, school_id=SCHOOL)], first=21, previous=tip)))
    async with transaction(audit_ledger.sessions) as session:
        [event] = await audit_ledger.checkpointer.checkpoint_once(session)
    broker = make_broker(settings, service="audit-test")
    async with jetstream(settings) as (_, js):
        await ensure_streams(js, settings)
        await broker.connect()
        try:
            assert await publish_checkpoint(broker, event, subjects=subjects)
            assert not await publish_checkpoint(broker, event, subjects=subjects)  # same head, deduplicated
        finally:
            await broker.stop()
        message = await js.get_last_msg(subjects.checkpoint_stream, subjects.checkpoint(school_id=SCHOOL))
        info = await js.stream_info(subjects.checkpoint_stream)
    assert info.state.messages == 1
    assert parse_event(message.data) == event


async def test_the_verify_command_reports_each_school(
    audit_ledger: Ledger, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SAFEGUARD_AUDIT_SIGNING_KEY_PATH", str(tmp_path / "key.pem"))
    monkeypatch.setenv("SAFEGUARD_AUDIT_WITNESS_LOG_PATH", str(audit_ledger.witness.path))
    get_settings.cache_clear()
    try:
        # A command line runs its own event loop, so it runs in a thread of its own here.
        result = await asyncio.to_thread(CliRunner().invoke, audit_app, ["verify"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{SCHOOL}: 20 entries, 5 signed heads, 20 anchored: ok" in result.output
