"""A quarantined report is announced without its content and reaches the DSL; a report left half-done is finished."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from nats.js import JetStreamContext

from services.intake.app import create_app
from services.intake.store import concerns, raw_inputs
from services.routing.app import RoutingService
from services.routing.quarantines import COUNTER
from services.routing.store import dead_letter_alerts
from shared.contracts.envelope import utc_now
from shared.db import transaction
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.factories import report_json
from tests.support.intake import one_school
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
URL = "/api/v1/schools/st-marks/concerns"
WORDS = "Synthetic-words-only-the-reporter-wrote"


async def counted_quarantines(routing: RoutingService) -> int:
    async with transaction(routing.runtime.sessions) as session:
        counted = await session.execute(
            sa.select(sa.func.sum(dead_letter_alerts.c.parked)).where(dead_letter_alerts.c.consumer == COUNTER)
        )
        return int(counted.scalar_one() or 0)


async def alerts(js: JetStreamContext, settings: Settings) -> list[Any]:
    """The notification requests about quarantines (the policy's own review reminder may be there too)."""
    requested = await stream_events(js, settings, "notification.requested")
    return [r for r in requested if r.payload.reason.startswith("ops: reports quarantined")]


async def test_a_quarantined_post_is_published_and_the_dsl_is_told_once_without_its_words(settings: Settings) -> None:
    settings = settings.model_copy(update={"policy_dir": str(REPO_ROOT / "deploy" / "policies")})
    routing = RoutingService(settings)
    await routing.start()
    await routing.runtime.broker.start()
    app, _ = create_app(settings)
    too_long = json.dumps(report_json(summary=WORDS + "x" * 300))
    try:
        async with (
            app.router.lifespan_context(app),
            jetstream(settings) as (_, js),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as http,
        ):
            first = await http.post(URL, content=too_long, headers={"content-type": "application/json"})
            quarantined = await eventually(lambda: stream_events(js, settings, "intake.quarantined"))
            await eventually(lambda: alerts(js, settings))
            second = await http.post(URL, content=too_long + " ", headers={"content-type": "application/json"})
            await eventually(lambda: counted_quarantines(routing), until=lambda n: n == 2)
            published = await stream_events(js, settings, "intake.quarantined")
            requested = await alerts(js, settings)
    finally:
        await routing.runtime.broker.stop()
        await routing.stop()
    assert first.status_code == 422 and second.status_code == 422
    [event] = quarantined
    assert event.school_id == "st-marks" and event.payload.reason_code == "invalid"
    assert event.payload.raw_input_id == first.json()["raw_input_id"] and event.payload.channel == "json_api"
    assert len(published) == 2
    assert requested and all(r.payload.reason == "ops: reports quarantined (invalid)" for r in requested)
    assert all(r.payload.recipient.role == "designated_safeguarding_lead" for r in requested)
    assert len({r.payload.case_id for r in requested}) == 1  # the second quarantine in the window asks for no alert
    assert all(WORDS not in r.to_json().decode() for r in [*published, *requested])


async def test_a_raw_input_left_received_is_finished_by_one_sweep_into_exactly_one_concern(
    settings: Settings, tmp_path: Path
) -> None:
    app, runtime = create_app(one_school(settings, tmp_path))
    sweeper = app.state.sweeper
    stuck_id, unreadable_id, fresh_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    long_ago = utc_now() - timedelta(minutes=10)
    rows = [
        (stuck_id, json.dumps(report_json()).encode(), long_ago),
        (unreadable_id, b"{not json", long_ago),
        (fresh_id, json.dumps(report_json()).encode(), utc_now() + timedelta(minutes=1)),
    ]
    async with running(runtime, subscribers=False):
        async with transaction(runtime.sessions) as session:
            for raw_input_id, body, received_at in rows:
                await session.execute(
                    sa.insert(raw_inputs).values(
                        raw_input_id=raw_input_id,
                        school_id="st-marks",
                        channel="json_api",
                        content_type="application/json",
                        body=body,
                        received_at=received_at,
                        status="received",
                    )
                )
        finished = await sweeper.sweep()
        again = await sweeper.sweep()
        async with transaction(runtime.sessions) as session:
            status = dict((await session.execute(sa.select(raw_inputs.c.raw_input_id, raw_inputs.c.status))).all())
            made = (await session.execute(sa.select(concerns.c.raw_input_id))).scalars().all()
    assert finished == 2 and again == 0
    assert status == {stuck_id: "accepted", unreadable_id: "rejected", fresh_id: "received"}
    assert made == [stuck_id]
