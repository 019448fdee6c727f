"""Intake's JSON API against real NATS + PostgreSQL: stored before parsed, 202 + reference, 422 naming the field."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from services.intake.app import create_app
from services.intake.store import concerns, raw_inputs
from shared.contracts import parse_event
from shared.db import asyncpg_dsn, transaction
from shared.settings import Settings
from tests.support.factories import report_json
from tests.support.running import jetstream, running, stream_events, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
URL = "/api/v1/schools/st-marks/concerns"


@pytest.fixture
def settings(settings: Settings, tmp_path) -> Settings:
    """Intake only needs to know which schools exist: one policy file name each."""
    (tmp_path / "st-marks.yaml").write_text("# the school exists\n")
    return settings.model_copy(update={"policy_dir": str(tmp_path)})


async def rows(runtime, table) -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(table))).all())


async def post(app, body: bytes, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        return await client.post(URL, content=body, headers={"content-type": "application/json", **headers})


async def test_a_valid_concern_gets_a_reference_and_is_published(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        response = await post(app, json.dumps(report_json()).encode())
        assert response.status_code == 202, response.text
        reference = response.json()["reference"]
        assert reference.startswith("SG-")
        await eventually(lambda: stream_messages(js, settings.stream_name), until=lambda n: n == 1, what="publish")
        message = await js.get_last_msg(settings.stream_name, f"{settings.subject_root}.st-marks.concern.received")
        event = parse_event(message.data)
        assert message.headers is not None and message.headers["Nats-Msg-Id"] == str(event.event_id)
        assert event.payload.reference == reference
        assert event.traceparent and event.traceparent.startswith("00-")
        [raw] = await rows(runtime, raw_inputs)
    assert (raw.status, raw.reference) == ("accepted", reference)
    assert json.loads(raw.body) == report_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (report_json(people=[]), "people"),
        ({k: v for k, v in report_json().items() if k != "summary"}, "summary"),
        (report_json(kind="Not A Kind!"), "kind"),
        (report_json(reporter={"role": "wizard"}), "reporter.role"),
        (report_json(people=[{"role": "learner", "involvement": "victim", "age": -3}]), "people[0].age"),
    ],
)
async def test_a_malformed_concern_gets_422_naming_the_field_and_only_its_quarantine_is_published(
    settings: Settings, body: dict, field: str
) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        response = await post(app, json.dumps(body).encode())
        assert response.status_code == 422
        assert field in [error["field"] for error in response.json()["errors"]]
        await runtime.relay.flush()
        assert await stream_messages(js, settings.stream_name) == 1
        [quarantined] = await stream_events(js, settings, "intake.quarantined")
        [raw] = await rows(runtime, raw_inputs)
    assert quarantined.payload.reason_code == "invalid" and quarantined.payload.raw_input_id == str(raw.raw_input_id)
    assert raw.status == "rejected" and field in raw.rejection_reason
    assert json.loads(raw.body) == body  # the input is kept, quarantined, with its reason


async def test_a_body_that_is_not_json_is_kept_and_refused(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False):
        response = await post(app, b"this is not json {")
        assert response.status_code == 422
        assert "json" in response.json()["detail"].lower()
        [raw] = await rows(runtime, raw_inputs)
    assert raw.body == b"this is not json {" and raw.status == "rejected"


async def test_an_unknown_school_is_refused(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            response = await client.post("/api/v1/schools/nowhere/concerns", json=report_json())
    assert response.status_code == 404 and "nowhere" in response.json()["detail"]


async def test_a_retried_post_with_the_same_idempotency_key_gives_the_same_reference(
    settings: Settings,
) -> None:
    app, runtime = create_app(settings)
    body = json.dumps(report_json()).encode()
    async with running(runtime, subscribers=False):
        first = await post(app, body, **{"idempotency-key": "form-submit-1"})
        second = await post(app, body, **{"idempotency-key": "form-submit-1"})
        assert (first.status_code, second.status_code) == (202, 200)
        assert first.json()["reference"] == second.json()["reference"]
        assert len(await rows(runtime, concerns)) == 1


async def test_concurrent_posts_with_one_idempotency_key_make_one_concern(settings: Settings) -> None:
    import asyncio

    app, runtime = create_app(settings)
    body = json.dumps(report_json()).encode()
    async with running(runtime, subscribers=False):
        responses = await asyncio.gather(*[post(app, body, **{"idempotency-key": "double-click"}) for _ in range(5)])
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 202]
        assert len({r.json()["reference"] for r in responses}) == 1
        assert len(await rows(runtime, concerns)) == 1
        assert len(await rows(runtime, raw_inputs)) == 1


async def test_a_report_after_the_database_dropped_intakes_connections_is_still_accepted_and_published(
    settings: Settings,
) -> None:
    """Keeping and accepting are single statements (no transaction block); dropped connections cost no report."""
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        assert (await post(app, json.dumps(report_json()).encode())).status_code == 202  # the pool holds connections
        killer = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            ended = await killer.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        assert ended >= 1
        response = await post(app, json.dumps(report_json()).encode())
        assert response.status_code == 202, response.text
        assert response.json()["receipt_secret"]
        await eventually(lambda: stream_messages(js, settings.stream_name), until=lambda n: n == 2, what="publish")
        accepted = await rows(runtime, concerns)
    assert response.json()["reference"] in {row.reference for row in accepted}
