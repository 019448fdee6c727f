"""One concern through every service as real processes: intake -> routing -> notifications -> audit, one trace."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import System
from tests.support.factories import report_json
from tests.support.running import jetstream
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def audit_rows(system: System, reference: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(system.dsn)
    try:
        correlation = await connection.fetchval(
            "select correlation_id from audit.ledger_events where event_type = 'concern.received' "
            "and event->'payload'->>'reference' = $1",
            reference,
        )
        if correlation is None:
            return []
        return await connection.fetch(
            "select event_type, trace_id, event from audit.ledger_events where correlation_id = $1 order by position",
            correlation,
        )
    finally:
        await connection.close()


def types(rows: list[asyncpg.Record]) -> list[str]:
    return [row["event_type"] for row in rows]


async def report(system: System) -> str:
    async with httpx.AsyncClient(base_url=system.intake_url, timeout=10) as client:
        response = await client.post("/api/v1/schools/st-marks/concerns", json=report_json())
    assert response.status_code == 202, response.text
    return response.json()["reference"]


async def test_a_concern_reaches_the_audit_record_with_one_trace(system: System) -> None:
    reference = await report(system)
    rows = await eventually(
        lambda: audit_rows(system, reference),
        until=lambda rows: "notification.sent" in types(rows) and "deadline.set" in types(rows),
        timeout=60,
        what="the audit record of the notification",
    )
    assert {
        "concern.received",
        "case.opened",
        "case.triaged",
        "notification.requested",
        "notification.sent",
        "deadline.set",
    } <= set(types(rows))
    trace_ids = {row["trace_id"] for row in rows}
    assert len(trace_ids) == 1 and None not in trace_ids
    triaged = next(row for row in rows if row["event_type"] == "case.triaged")
    assert '"policy_version"' in triaged["event"] and '"rule_ids"' in triaged["event"]
    emailed = [
        json.loads(r["event"])["payload"]["notification_id"]
        for r in rows
        if r["event_type"] == "notification.sent" and json.loads(r["event"])["payload"]["channel"] == "email"
    ]
    delivered = {path.stem for path in Path(system.settings.mail_sink_dir).glob("*.eml")}
    assert emailed and set(emailed) <= delivered


async def test_the_same_concern_event_twice_gives_one_case_and_one_notification_each(system: System) -> None:
    reference = await report(system)
    rows = await eventually(
        lambda: audit_rows(system, reference),
        until=lambda rows: "notification.sent" in types(rows),
        timeout=60,
        what="first pass",
    )
    concern = next(row for row in rows if row["event_type"] == "concern.received")
    async with jetstream(system.settings) as (_, js):
        subject = f"{system.settings.subject_root}.st-marks.concern.received"
        # Same event id, new message id: the broker's dedupe window cannot catch it; the inboxes must.
        await js.publish(subject, concern["event"].encode(), headers={"Nats-Msg-Id": "replayed-by-test"})
        await eventually(
            lambda: js.consumer_info(system.settings.stream_name, "routing-concerns"),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="routing drained",
        )
        await eventually(
            lambda: js.consumer_info(system.settings.stream_name, "audit-ledger"),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="audit drained",
        )
    rows = await audit_rows(system, reference)
    assert types(rows).count("concern.received") == 1
    assert types(rows).count("case.opened") == 1
    requested = [r for r in rows if r["event_type"] == "notification.requested"]
    # One outcome each: sent, or failed where the person has no push subscription yet.
    outcomes = [r for r in rows if r["event_type"] in ("notification.sent", "notification.failed")]
    assert requested and len(outcomes) == len(requested)
