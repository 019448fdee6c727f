"""No personal data in logs: a concern full of marker strings goes through every service at DEBUG, and no log line
carries any of them (nor the staff's phone numbers and addresses the notifications went to)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tests.e2e.conftest import SERVICES, System, started_system
from tests.e2e.test_concern_end_to_end import audit_rows, types
from tests.support.factories import report_json
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

MARKERS = {
    "reporter name": "Zebedee Quillfeather",
    "reporter contact": "quillfeather.marker@example.org",
    "reporter phone": "+44 7700 900987",
    "learner name": "Ottoline Marchbanks",
    "summary": "vermilion-heron-marker summary",
    "details": "teal-otter-marker details",
}
# Where the notifications went: St Mark's staff in the policy file (synthetic, Ofcom drama range).
STAFF_CONTACT = re.compile(r"7700 ?900 ?1\d\d|@st-marks\.example\.org")


@pytest.fixture
async def chatty_system(e2e_settings: Settings, tmp_path: Path) -> AsyncIterator[System]:
    async with started_system(e2e_settings, tmp_path, extra_env={"SAFEGUARD_LOG_LEVEL": "DEBUG"}) as running:
        yield running


async def test_no_log_line_of_any_service_names_a_person_or_repeats_the_concern(chatty_system: System) -> None:
    system = chatty_system
    concern = report_json(
        reporter={"role": "parent_carer", "name": MARKERS["reporter name"], "contact": MARKERS["reporter contact"]},
        people=[{"role": "learner", "involvement": "victim", "name": MARKERS["learner name"], "age": 12}],
        summary=MARKERS["summary"],
        details=f"{MARKERS['details']}; call back on {MARKERS['reporter phone']}",
        immediate_risk="yes",
    )
    async with httpx.AsyncClient(base_url=system.intake_url, timeout=10) as client:
        accepted = await client.post("/api/v1/schools/st-marks/concerns", json=concern)
        # A request that fails validation must not echo the concern into a log either.
        refused = await client.post(
            "/api/v1/schools/st-marks/concerns", json={**concern, "kind": {"nested": MARKERS["summary"]}}
        )
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code >= 400
    reference = accepted.json()["reference"]
    await eventually(
        lambda: audit_rows(system, reference),
        until=lambda rows: {"notification.sent", "deadline.set"} <= set(types(rows)),
        timeout=60,
        what="the concern recorded and its notifications sent",
    )
    leaks = []
    for name in SERVICES:
        for number, line in enumerate(system.log_of(name).splitlines(), start=1):
            found = [what for what, marker in MARKERS.items() if marker in line]
            if STAFF_CONTACT.search(line):
                found.append("staff contact")
            if found:
                leaks.append(f"{name}.log:{number} ({', '.join(found)}): {line[:200]}")
    assert any("DEBUG" in system.log_of(name) for name in SERVICES), "the services did not log at DEBUG"
    assert leaks == []
