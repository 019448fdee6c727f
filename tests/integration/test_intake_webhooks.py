"""Signed form webhooks against real NATS + PostgreSQL: a good signature is a concern; a bad one a kept attempt."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.intake.app import create_app
from services.intake.store import raw_inputs
from services.intake.tables import webhook_attempts
from services.intake.webhook_http import SIGNATURE_HEADER, TIMESTAMP_HEADER
from services.intake.webhooks import sign
from shared.db import transaction
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.forms import google_forms_payload, microsoft_forms_payload
from tests.support.intake import one_school
from tests.support.running import jetstream, running, stream_events, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
SECRET = "synthetic-webhook-secret-0123456789"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return one_school(
        settings,
        tmp_path,
        intake_webhook_sources_file=str(REPO_ROOT / "deploy" / "webhooks" / "sources.yaml"),
        intake_webhook_secrets={"st-marks-microsoft-forms": SECRET, "st-marks-google-forms": SECRET},
    )


async def rows(runtime, table) -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(table))).all())


async def post(app, source: str, body: bytes, *, secret: str = SECRET, age: int = 0) -> httpx.Response:
    stamp = str(int(time.time()) - age)
    headers = {
        "content-type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(secret, timestamp=stamp, body=body),
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        return await client.post(f"/api/v1/forms/{source}", content=body, headers=headers)


@pytest.mark.parametrize(
    ("source", "payload"),
    [("st-marks-microsoft-forms", microsoft_forms_payload()), ("st-marks-google-forms", google_forms_payload())],
)
async def test_a_signed_form_response_becomes_a_published_concern(settings: Settings, source: str, payload) -> None:
    app, runtime = create_app(settings)
    body = json.dumps(payload).encode()
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        response = await post(app, source, body)
        again = await post(app, source, body)  # the form tool retrying the same response
        [event] = await eventually(
            lambda: stream_events(js, settings, "concern.received"), until=lambda e: len(e) == 1, what="concern"
        )
        [raw] = await rows(runtime, raw_inputs)
    assert (response.status_code, again.status_code) == (202, 200)
    assert event.payload.reference == response.json()["reference"] == again.json()["reference"]
    assert event.payload.channel == "webhook" and raw.body == body


@pytest.mark.parametrize(("secret", "age", "reason"), [("wrong-secret", 0, "does not match"), (SECRET, 3600, "replay")])
async def test_a_bad_or_replayed_signature_is_401_kept_as_an_attempt_and_nothing_is_published(
    settings: Settings, secret: str, age: int, reason: str
) -> None:
    app, runtime = create_app(settings)
    body = json.dumps(google_forms_payload()).encode()
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        response = await post(app, "st-marks-google-forms", body, secret=secret, age=age)
        [attempt] = await rows(runtime, webhook_attempts)
        assert await rows(runtime, raw_inputs) == []
        await runtime.relay.flush()
        assert await stream_messages(js, settings.stream_name) == 0
    assert response.status_code == 401 and reason in response.json()["detail"]
    assert response.json()["attempt_id"] == str(attempt.attempt_id)
    assert (attempt.source, attempt.body) == ("st-marks-google-forms", body) and reason in attempt.reason


async def test_an_unknown_source_is_404(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False):
        response = await post(app, "nobody-forms", b"{}")
    assert response.status_code == 404 and "nobody-forms" in response.json()["detail"]
