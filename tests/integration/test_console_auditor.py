"""The auditor view through the console and audit's queries: cases as they stood, a chronology, verify, export.

Real NATS and PostgreSQL: the console asks the audit service over request/reply with a signed token, audit
replays its own ledger, records every read in it, and hands an export bundle back a chunk at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa

from services.audit.app import AuditService
from services.audit.settings import AuditSettings
from services.audit.store import SCHEMA as AUDIT_SCHEMA
from services.audit.store import ledger
from services.audit.verify_export import verify_bundle
from shared.contracts.envelope import utc_now
from shared.contracts.record_events import RecordViewed
from shared.db import transaction
from shared.inbox_outbox import InboxOutbox
from shared.settings import Settings
from tests.support.console import (
    Console,
    OpenedCase,
    add_user,
    console_running,
    csrf_of,
    open_case,
    projected,
    sign_in,
)
from tests.support.running import jetstream, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@asynccontextmanager
async def audit_running(settings: Settings) -> AsyncIterator[AuditService]:
    service = AuditService(settings, AuditSettings())
    service.exports.chunk_bytes = 2048  # many chunks, as a large bundle would have
    try:
        async with running(service.runtime):
            yield service
    finally:
        service.exports.close()


async def ledger_holds(service: AuditService, case: OpenedCase) -> None:
    async def count() -> int:
        async with transaction(service.runtime.sessions) as session:
            query = sa.select(sa.func.count()).select_from(ledger).where(ledger.c.aggregate_id == case.case_id)
            return int(await session.scalar(query) or 0)

    await eventually(count, until=lambda n: n >= len(case.events), what=f"case {case.case_id} in the ledger")


async def views_recorded(service: AuditService) -> list[tuple[str, str, str, str]]:
    """(viewer, role, record id, view) of every read audit put in its outbox."""
    outbox = InboxOutbox(AUDIT_SCHEMA).outbox
    async with transaction(service.runtime.sessions) as session:
        bodies = await session.execute(sa.select(outbox.c.body).where(outbox.c.event_type == RecordViewed.TYPE))
        found = [RecordViewed.model_validate_json(body) for body in bodies.scalars()]
    return [(v.actor.id, v.actor.role, v.payload.record_id, v.payload.view) for v in found]


async def seeded(console: Console, service: AuditService) -> tuple[OpenedCase, Any, OpenedCase, OpenedCase]:
    """A case, then a moment, then a later case and one about the auditor: all in the ledger and read model."""
    settings = console.settings
    async with jetstream(settings) as (_, js):
        earlier = await open_case(js, settings, summary="The earlier concern")
        await ledger_holds(service, earlier)
        moment = utc_now()
        later = await open_case(js, settings, summary="The later concern")
        about_auditor = await open_case(js, settings, subjects=("learner-3", "auditor-1"), summary="About them")
    for case in (later, about_auditor):
        await ledger_holds(service, case)
    await projected(console, about_auditor.case_id)
    return earlier, moment, later, about_auditor


async def test_an_auditor_sees_the_cases_as_they_stood_a_chronology_verifies_and_exports(settings: Settings) -> None:
    async with audit_running(settings) as service, console_running(settings) as console:
        earlier, moment, later, about_auditor = await seeded(console, service)
        await add_user(console, "auditor@example.org", person="auditor-1", role="auditor")
        await sign_in(console, "auditor@example.org")
        client = console.client

        picker = await client.get("/audit")
        then = await client.get("/audit/cases", params={"school": "st-marks", "as_of": moment.isoformat()})
        now = await client.get("/audit/cases", params={"school": "st-marks"})
        chronology = await client.get(f"/audit/cases/{earlier.case_id}", params={"school": "st-marks"})
        own = await client.get(f"/audit/cases/{about_auditor.case_id}", params={"school": "st-marks"})
        naive = moment.astimezone(UTC).replace(tzinfo=None).isoformat()  # what a datetime-local field sends
        as_typed = await client.get("/audit/cases", params={"school": "st-marks", "as_of": naive})

        assert picker.status_code == 200 and '<option value="st-marks">' in picker.text
        assert then.status_code == 200
        assert earlier.reference in then.text and later.reference not in then.text
        assert as_typed.status_code == 200 and later.reference not in as_typed.text
        assert earlier.reference in now.text and later.reference in now.text
        # Break-glass or not, nobody is shown a case about themselves: not listed, and its chronology is "not found".
        assert about_auditor.reference not in now.text
        assert own.status_code == 404
        assert chronology.status_code == 200
        assert "case.opened" in chronology.text and "case.triaged" in chronology.text
        assert "bullying-online" in chronology.text

        verified = await client.post("/audit/verify", data={"csrf_token": csrf_of(now.text), "school": "st-marks"})
        assert verified.status_code == 200 and "Verified: all" in verified.text

        await service.checkpoint()
        download = await client.get("/audit/export", params={"school": "st-marks"})
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith('attachment; filename="audit-st-marks-record-')
        report = verify_bundle(download.text.splitlines(), public_key=service.key.public_key())
        assert report.ok, report.problem
        assert report.entries >= len(earlier.events) + len(later.events)
        assert earlier.case_id in download.text and about_auditor.case_id not in download.text
        assert "About them" not in download.text
        assert int(download.headers["content-length"]) == len(download.content)
        assert list(service.exports.folder.iterdir()) == []  # fetched to the end: gone from audit's disk

        recorded = await views_recorded(service)
    assert ("auditor-1", "auditor", "st-marks", "replay") in recorded
    assert ("auditor-1", "auditor", earlier.case_id, "replay") in recorded
    assert ("auditor-1", "auditor", "st-marks", "verify") in recorded
    assert ("auditor-1", "auditor", "st-marks", "export") in recorded
    # The refused chronology recorded nothing.
    assert not [view for view in recorded if view[2] == about_auditor.case_id]


async def test_verify_from_the_page_names_the_first_bad_entry(settings: Settings) -> None:
    async with audit_running(settings) as service, console_running(settings) as console:
        earlier, *_ = await seeded(console, service)
        await service.checkpoint()
        async with service.runtime.sessions() as session, session.begin():
            # The insider: as the database superuser, with the append-only triggers off, an entry is edited (its
            # bytes, what every reader reads; the JSONB beside them is read by nobody).
            await session.execute(sa.text("set local session_replication_role = replica"))
            await session.execute(
                sa.text(
                    "update audit.ledger set entry = convert_to(replace(convert_from(entry, 'UTF8'), "
                    '\'"actor":{"id":"\', \'"actor":{"id":"someone-else-\'), \'UTF8\') '
                    "where school_id = 'st-marks' and school_sequence = 2"
                )
            )
        lead = "education-safeguarding-service"
        await add_user(console, "lead@example.org", person=lead, role="trust_safeguarding_lead")
        await sign_in(console, "lead@example.org")
        cases = await console.client.get("/audit/cases", params={"school": "st-marks"})
        verified = await console.client.post(
            "/audit/verify", data={"csrf_token": csrf_of(cases.text), "school": "st-marks"}
        )
    assert earlier.reference in cases.text
    assert verified.status_code == 200
    assert "Not verified: entry 2" in verified.text and "edited" in verified.text


@pytest.mark.parametrize(
    ("role", "person"),
    [
        ("designated_safeguarding_lead", "s-bird"),
        ("headteacher", "headteacher"),
        ("named_governor", "d-hill"),
        ("staff", "teacher-1"),
        ("trust_administrator", "admin-1"),
    ],
)
async def test_no_other_role_reaches_the_record_and_a_refusal_asks_audit_nothing(
    settings: Settings, role: str, person: str
) -> None:
    async with audit_running(settings) as service, console_running(settings) as console:
        await add_user(console, "someone@example.org", person=person, role=role)
        await sign_in(console, "someone@example.org")
        answers = [
            (await console.client.get("/audit")).status_code,
            (await console.client.get("/audit/cases", params={"school": "st-marks"})).status_code,
            (await console.client.get("/audit/export", params={"school": "st-marks"})).status_code,
        ]
        recorded = await views_recorded(service)
    assert answers == [403, 403, 403]
    assert recorded == []
