"""Reading the record is itself recorded: replay and export put a record.viewed in the ledger, who-read lists it."""

from __future__ import annotations

import json

import pytest

from services.audit.app import create_app
from services.audit.reads import who_read
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_cli import safeguard
from tests.support.audit_keys import audit_keyring, sealing_ledger
from tests.support.running import running
from tests.support.waiting import eventually
from tests.unit.routing_case.cases import opening_events

pytestmark = pytest.mark.integration


async def test_replaying_a_case_records_who_read_it_and_why(settings: Settings) -> None:
    _, runtime = create_app(settings)
    case = opening_events()
    case_id = case[0].aggregate_id
    async with running(runtime):
        async with transaction(runtime.sessions) as session:
            await sealing_ledger().append(session, case)
        code, output = await safeguard(
            settings, "audit", "replay", "--school", "st-marks", "--case", case_id,
            "--reason", "Preparing the strategy meeting",
        )  # fmt: skip
        assert code == 0, output
        assert json.loads(output)["case"]["case_id"] == case_id
        code, output = await safeguard(
            settings, "audit", "replay", "--school", "st-marks", "--case", case_id,
            "--viewer", "head-1", "--viewer-role", "headteacher", "--reason", "DSL absent; child at risk today",
            "--break-glass",
        )  # fmt: skip
        assert code == 0, output

        async def views() -> list[dict[str, object]]:
            async with transaction(runtime.sessions) as session:
                return await who_read(session, keyring=audit_keyring(), case_id=case_id)

        recorded = await eventually(views, until=lambda found: len(found) == 2, what="both views in the ledger")
        code, listing = await safeguard(settings, "audit", "who-read", "--case", case_id)
    assert [(v["viewer"], v["role"], v["view"], v["break_glass"]) for v in recorded] == [
        ("s-bird", "designated_safeguarding_lead", "replay", False),
        ("head-1", "headteacher", "replay", True),
    ]
    assert recorded[0]["reason"] == "Preparing the strategy meeting"
    assert code == 0
    lines = listing.strip().splitlines()
    assert "s-bird (designated_safeguarding_lead)  replay via safeguard-cli: Preparing the strategy meeting" in lines[0]
    assert lines[1].endswith("DSL absent; child at risk today  BREAK-GLASS")


async def test_a_read_without_a_stated_reason_is_refused_and_shows_nothing(settings: Settings) -> None:
    code, output = await safeguard(settings, "audit", "replay", "--school", "st-marks", "--case", "case-x")
    assert code == 2 and "--reason" in output
