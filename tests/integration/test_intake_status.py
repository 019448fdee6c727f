"""The reporter's receipt: a reference and a one-time secret open a status page that shows the stage only."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from shared.contracts.case_events import CaseAcknowledged, CaseAcknowledgedPayload, CaseClosed, CaseClosedPayload
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import CaseOpened, CaseOpenedPayload
from shared.settings import Settings
from tests.support.factories import report_json
from tests.support.intake import one_school
from tests.support.running import jetstream, publish_raw
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
DSL = Actor(id="s-bird", role="designated_safeguarding_lead")


def case_event(event_class, payload, *, case_id: str):  # type: ignore[no-untyped-def]
    return event_class.new(payload, school_id="st-marks", aggregate_id=case_id, actor=DSL, occurred_at=utc_now())


async def stage(http: httpx.AsyncClient, reference: str, secret: str) -> str:
    page = await http.post("/status", data={"reference": reference, "secret": secret})
    found = re.search(r'id="stage">([^<]+)<', page.text)
    return html.unescape(found.group(1)) if found else f"({page.status_code})"


async def test_the_status_page_follows_the_case_and_shows_nothing_else(settings: Settings, tmp_path: Path) -> None:
    settings = one_school(settings, tmp_path, intake_rate_burst=100_000)
    app, _ = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        jetstream(settings) as (_, js),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as http,
    ):
        accepted = (await http.post("/api/v1/schools/st-marks/concerns", json=report_json())).json()
        reference, secret = accepted["reference"], accepted["receipt_secret"]
        assert secret and accepted["status_url"] == "/status"
        assert await stage(http, reference, secret) == "Received: the school's safeguarding lead has been told."
        assert await stage(http, reference, "wrong-secret") == "(404)"
        assert await stage(http, "SG-2026-NOSUCHREF", secret) == "(404)"

        case_id = str(uuid.uuid4())
        opened = CaseOpenedPayload(
            case_id=case_id,
            reference=reference,
            concern_event_id=str(uuid.uuid4()),
            kind="online_bullying",
            policy_version=1,
        )
        await publish_raw(js, settings, case_event(CaseOpened, opened, case_id=case_id))
        acknowledged = CaseAcknowledgedPayload(case_id=case_id, acknowledged_by="s-bird", role="dsl")
        await publish_raw(js, settings, case_event(CaseAcknowledged, acknowledged, case_id=case_id))
        await eventually(lambda: stage(http, reference, secret), until=lambda s: s.startswith("Seen"), what="seen")
        closed = CaseClosedPayload(case_id=case_id, case_type="concern", outcome="resolved", summary="Synthetic")
        await publish_raw(js, settings, case_event(CaseClosed, closed, case_id=case_id))
        page_text = await eventually(
            lambda: stage(http, reference, secret), until=lambda s: s == "Closed.", what="closed"
        )
    assert page_text == "Closed."
