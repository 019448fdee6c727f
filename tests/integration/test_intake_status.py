"""The reporter's receipt: a reference and a one-time secret open a status page that shows the stage only."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.receipts import on_case_events
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


async def test_a_batch_that_opens_acknowledges_and_closes_a_case_moves_its_receipt_in_order(
    settings: Settings, tmp_path: Path
) -> None:
    """The receipts consumer takes a batch in a few statements; events of one case still apply in stream order."""
    settings = one_school(settings, tmp_path, intake_rate_burst=100_000)
    app, runtime = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as http,
    ):
        posted = [(await http.post("/api/v1/schools/st-marks/concerns", json=report_json())).json() for _ in range(3)]
        case_ids = [str(uuid.uuid4()) for _ in posted]
        batch = [
            case_event(
                CaseOpened,
                CaseOpenedPayload(
                    case_id=case_id,
                    reference=accepted["reference"],
                    concern_event_id=str(uuid.uuid4()),
                    kind="online_bullying",
                    policy_version=1,
                ),
                case_id=case_id,
            )
            for accepted, case_id in zip(posted, case_ids, strict=True)
        ]
        seen = CaseAcknowledgedPayload(case_id=case_ids[1], acknowledged_by="s-bird", role="dsl")
        batch.append(case_event(CaseAcknowledged, seen, case_id=case_ids[1]))
        seen_then_closed = CaseAcknowledgedPayload(case_id=case_ids[2], acknowledged_by="s-bird", role="dsl")
        batch.append(case_event(CaseAcknowledged, seen_then_closed, case_id=case_ids[2]))
        closed = CaseClosedPayload(case_id=case_ids[2], case_type="concern", outcome="resolved", summary="Synthetic")
        batch.append(case_event(CaseClosed, closed, case_id=case_ids[2]))
        async with runtime.uow.begin() as work:
            await on_case_events(batch, work=work)
        stages = [await stage(http, a["reference"], a["receipt_secret"]) for a in posted]
    assert [s.split(":")[0].split(" ")[0] for s in stages] == ["Received", "Seen", "Closed."]
