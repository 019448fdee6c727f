"""Sealing a batch reads and stores its data keys in as few round trips as it can, and never makes a second key
for a subject that has one: a reporter seen before keeps their key when a new case's key is made beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.domain import event_of
from services.audit.kek import LocalKek
from services.audit.keyring import KeyRing
from services.audit.sealing import ERASED, new_key
from services.audit.store import SqlLedger, driver_connection
from shared.db import asyncpg_dsn, transaction
from shared.settings import Settings
from tests.support.audit_ledger import migrated_audit
from tests.support.factories import concern_received

pytestmark = pytest.mark.integration
SCHOOL = "st-marks"


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_audit(settings) as sessions:
        yield sessions


def a_concern(summary: str) -> Any:
    reporter = {"role": "parent_carer", "name": "Pat Parentname", "contact": "pat@example.org"}
    return concern_received(school_id=SCHOOL, reporter=reporter, summary=summary)


async def append_counting(sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, event: Any) -> list[str]:
    """Append one event in its own transaction; the statements audit sent about data keys."""
    sent: list[str] = []
    async with transaction(sessions) as session:
        driver = await driver_connection(session)

        def log(record: Any) -> None:
            sent.append(record.query)

        driver.add_query_logger(log)
        try:
            await SqlLedger(sealer=keyring).append(session, [event])
        finally:
            driver.remove_query_logger(log)
    return [query for query in sent if "data_keys" in query]


async def test_a_known_reporter_is_found_and_a_new_case_key_stored_in_one_statement(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    keyring = KeyRing(LocalKek(new_key()))
    first = await append_counting(sessions, keyring, a_concern("The first concern"))
    # the school's key and the plainly named keys read; the school's key stored (its first); then the reporter's
    # key (named by a hash keyed by the school's) found or made, and the new case's key stored, at once
    assert len(first) == 3, first
    second = await append_counting(sessions, keyring, a_concern("The second concern"))
    assert len(second) == 2, second  # was three: the reporter's key looked up, then the case's stored

    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        keys = await connection.fetch("select key_id from audit.data_keys where school_id = $1", SCHOOL)
        entries = await connection.fetch("select entry from audit.ledger order by school_sequence")
    finally:
        await connection.close()
    key_ids = [row["key_id"] for row in keys]
    assert len(key_ids) == len(set(key_ids))
    assert sum(key_id.startswith("reporter:") for key_id in key_ids) == 1  # one key for the one reporter
    assert sum(key_id.startswith("case:") for key_id in key_ids) == 2
    documents = [event_of(bytes(row["entry"])) for row in entries]
    reporter_kids = {document["payload"]["reporter"]["contact"]["kid"] for document in documents}
    assert len(reporter_kids) == 1

    async with transaction(sessions) as session:  # both concerns' reporter fields open with that one key
        reader = await keyring.reader(session, school_id=SCHOOL)
        opened = [reader.open(document).document for document in documents]
    assert [document["payload"]["reporter"]["contact"] for document in opened] == ["pat@example.org"] * 2
    assert ERASED not in {document["payload"]["summary"] for document in opened}
