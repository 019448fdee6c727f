"""Every channel, through to a case opened by routing: JSON API, report form, email (SMTP) and a signed webhook."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.webhook_http import SIGNATURE_HEADER, TIMESTAMP_HEADER
from services.intake.webhooks import sign
from services.routing.app import RoutingService
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.factories import report_json
from tests.support.forms import google_forms_payload
from tests.support.intake import free_port
from tests.support.running import jetstream, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
ADDRESS = "report@st-marks.example.org"
SECRET = "synthetic-webhook-secret-0123456789"


def mail(settings: Settings) -> None:
    message = EmailMessage()
    message["From"] = "A Parent <parent@example.org>"
    message["To"] = ADDRESS
    message["Subject"] = "Worried about messages my child received"
    message.set_content("Synthetic words, nothing urgent said.")
    assert settings.intake_smtp_port is not None
    with smtplib.SMTP("127.0.0.1", settings.intake_smtp_port, timeout=10) as client:
        client.send_message(message)


async def test_a_concern_from_each_channel_opens_a_case(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(
        update={
            "policy_dir": str(REPO_ROOT / "deploy" / "policies"),
            "intake_attachments_dir": str(tmp_path / "attachments"),
            "intake_email_addresses": {ADDRESS: "st-marks"},
            "intake_smtp_port": free_port(),
            "intake_webhook_sources_file": str(REPO_ROOT / "deploy" / "webhooks" / "sources.yaml"),
            "intake_webhook_secrets": {"st-marks-google-forms": SECRET},
        }
    )
    routing = RoutingService(settings)
    await routing.start()
    await routing.runtime.broker.start()
    app, _ = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            jetstream(settings) as (_, js),
            httpx.AsyncClient(transport=transport, base_url="http://intake") as http,
        ):
            by_json = await http.post("/api/v1/schools/st-marks/concerns", json=report_json())
            page = await http.get("/report/st-marks")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            form = {
                "csrf_token": token.group(1),
                "reporter_role": "staff",
                "about": "learner",
                "kind": "online_bullying",
                "immediate_risk": "no",
                "summary": "Unkind comments in a class chat",
            }
            by_form = await http.post("/report/st-marks", data=form, files={"attachments": ("a.txt", b"notes")})
            body = json.dumps(google_forms_payload()).encode()
            stamp = str(int(time.time()))
            by_webhook = await http.post(
                "/api/v1/forms/st-marks-google-forms",
                content=body,
                headers={
                    "content-type": "application/json",
                    TIMESTAMP_HEADER: stamp,
                    SIGNATURE_HEADER: sign(SECRET, timestamp=stamp, body=body),
                },
            )
            await asyncio.to_thread(mail, settings)
            opened = await eventually(
                lambda: stream_events(js, settings, "case.opened"), until=lambda e: len(e) == 4, timeout=60, what="4"
            )
            received = await stream_events(js, settings, "concern.received")
    finally:
        await routing.runtime.broker.stop()
        await routing.stop()
    assert (by_json.status_code, by_form.status_code, by_webhook.status_code) == (202, 200, 202)
    channels = {event.payload.reference: event.payload.channel for event in received}
    assert sorted(channels[event.payload.reference] for event in opened) == ["email", "json_api", "web_form", "webhook"]
    assert by_json.json()["reference"] in channels and by_webhook.json()["reference"] in channels
