"""Opening a case in the console is recorded in audit's ledger: a record.viewed naming the viewer and the case."""

from __future__ import annotations

from typing import Any

import pytest

from services.audit.app import create_app as create_audit
from services.audit.reads import who_read
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_keys import audit_keyring
from tests.support.console import add_user, console_running, open_case, projected, sign_in
from tests.support.running import jetstream, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_opening_a_case_puts_who_opened_it_in_the_audit_ledger(settings: Settings) -> None:
    _, audit = create_audit(settings)
    async with running(audit), console_running(settings) as console:
        async with jetstream(settings) as (_, js):
            case = await open_case(js, settings)
        await projected(console, case.case_id)
        await add_user(console, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
        await sign_in(console, "dsl@example.org")
        page = await console.client.get(f"/cases/{case.case_id}")
        assert page.status_code == 200

        async def views() -> list[dict[str, Any]]:
            async with transaction(audit.sessions) as session:
                return await who_read(session, keyring=audit_keyring(), case_id=case.case_id, school_id="st-marks")

        recorded = await eventually(views, until=lambda found: len(found) >= 1, what="the view in the ledger")
    assert [(v["viewer"], v["role"], v["view"], v["via"], v["break_glass"]) for v in recorded] == [
        ("s-bird", "designated_safeguarding_lead", "case", "console", False)
    ]
