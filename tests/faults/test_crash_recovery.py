"""Services killed mid-burst (SIGKILL, no clean shutdown) and restarted: no concern and no notification is lost
or doubled. Runs against real NATS + PostgreSQL with every service as its own process."""

from __future__ import annotations

import json
import signal
from collections import Counter

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import System
from tests.support.factories import report_json
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
BURST = 30


async def ledger(system: System) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(system.dsn)
    try:
        return await connection.fetch("select event_type, event from audit.ledger_events order by position")
    finally:
        await connection.close()


def tally(rows: list[asyncpg.Record]) -> dict[str, Counter[str]]:
    """Per event type, how often each concern reference (or notification id) appears in the record."""
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        payload = json.loads(row["event"])["payload"]
        key = payload.get("notification_id") or payload.get("reference")
        counts.setdefault(row["event_type"], Counter())[key] += 1
    return counts


def outcomes(counts: dict[str, Counter[str]]) -> Counter[str]:
    """Per notification, how many outcomes it had: sent, or failed (a push to someone with no subscription)."""
    return counts.get("notification.sent", Counter()) + counts.get("notification.failed", Counter())


def settled(rows: list[asyncpg.Record], references: set[str]) -> bool:
    counts = tally(rows)
    return (
        set(counts.get("case.opened", {})) >= references
        and set(outcomes(counts)) >= set(counts.get("notification.requested", {}))
        and bool(counts.get("notification.requested"))
    )


async def test_killing_routing_and_notifications_mid_burst_loses_and_doubles_nothing(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.intake_url, timeout=10) as client:
        responses = []
        for number in range(BURST):
            responses.append(
                await client.post("/api/v1/schools/st-marks/concerns", json=report_json(summary=f"Burst {number}"))
            )
            if number == BURST // 3:
                system.processes["routing"].send_signal(signal.SIGKILL)
                system.processes["notifications"].send_signal(signal.SIGKILL)
    references = {r.json()["reference"] for r in responses}
    assert [r.status_code for r in responses] == [202] * BURST and len(references) == BURST
    for name in ("routing", "notifications"):
        system.processes[name].wait(timeout=10)
        del system.processes[name]
        system.start(name)
    rows = await eventually(
        lambda: ledger(system),
        until=lambda rows: settled(rows, references),
        timeout=120,
        interval=0.5,
        what="every concern routed and every notification sent",
    )
    counts = tally(rows)
    assert {ref: n for ref, n in counts["concern.received"].items() if n != 1} == {}
    assert set(counts["case.opened"]) == references
    assert max(counts["case.opened"].values()) == 1 and max(counts["case.triaged"].values()) == 1
    assert max(counts["notification.requested"].values()) == 1
    assert outcomes(counts) == counts["notification.requested"]
