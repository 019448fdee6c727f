"""Break-glass through the console: a reason is required, the ledger keeps it, and the school's DSL is alerted.

Real routing (it triages the concern, opens the case and alerts the DSL), the console and audit, on real NATS and
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from services.audit.app import create_app as create_audit
from services.audit.reads import who_read
from services.console.store import cases
from services.routing.app import RoutingService
from services.routing.break_glass import REASON
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_keys import audit_keyring
from tests.support.console import add_user, console_running, csrf_of, sign_in
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SUMMARY = "Marker-7Q: messages in a class group chat"
WHY = "The DSL is unreachable and the police asked me to confirm the case reference"


async def test_a_governor_breaks_glass_with_a_reason_the_ledger_keeps_it_and_the_dsl_is_told(
    settings: Settings,
) -> None:
    routing = RoutingService(settings)
    await routing.start()
    await routing.runtime.broker.start()
    _, audit = create_audit(settings)
    try:
        async with running(audit), console_running(settings) as console, jetstream(settings) as (_, js):
            concern = concern_received(summary=SUMMARY)
            await publish_raw(js, settings, concern)

            async def case_row() -> Any:
                async with console.runtime.sessions() as session:
                    query = sa.select(cases).where(cases.c.reference == concern.payload.reference)
                    return (await session.execute(query)).one_or_none()

            row = await eventually(case_row, until=lambda r: r is not None and r.version >= 2, what="the case")
            await add_user(console, "governor@example.org", person="d-hill", role="named_governor")
            await sign_in(console, "governor@example.org")
            client = console.client

            # Outside the governor's need to know: refused, with the break-glass form, and nothing recorded.
            asked = await client.get(f"/cases/{row.case_id}")
            assert asked.status_code == 403 and "break-glass" in asked.text and SUMMARY not in asked.text
            csrf = csrf_of(asked.text)
            too_short = await client.post(f"/cases/{row.case_id}/break-glass", data={"csrf_token": csrf, "reason": "x"})
            assert too_short.status_code == 400 and SUMMARY not in too_short.text
            no_csrf = await client.post(f"/cases/{row.case_id}/break-glass", data={"reason": WHY})
            assert no_csrf.status_code == 403

            opened = await client.post(f"/cases/{row.case_id}/break-glass", data={"csrf_token": csrf, "reason": WHY})
            assert opened.status_code == 200 and SUMMARY in opened.text

            async def views() -> list[dict[str, Any]]:
                async with transaction(audit.sessions) as session:
                    return await who_read(session, keyring=audit_keyring(), case_id=row.case_id, school_id="st-marks")

            recorded = await eventually(views, until=lambda found: len(found) >= 1, what="the view in the ledger")

            async def alerts() -> list[Any]:
                requested = await stream_events(js, settings, "notification.requested")
                return [r for r in requested if r.payload.reason == REASON]

            told = await eventually(alerts, what="the break-glass alert")
    finally:
        await routing.runtime.broker.stop()
        await routing.stop()
    assert [(v["viewer"], v["role"], v["reason"], v["break_glass"]) for v in recorded] == [
        ("d-hill", "named_governor", WHY, True)
    ]
    assert {alert.payload.recipient.person_id for alert in told} == {"s-bird"}
    for alert in told:
        assert alert.payload.reference.startswith(f"{concern.payload.reference} opened by d-hill at ")
        assert "Marker-7Q" not in alert.to_json().decode() and WHY not in alert.to_json().decode()
