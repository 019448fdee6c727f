"""Email-in against real NATS + PostgreSQL: the SMTP listener driven by smtplib, and raw uploads of 200 emails."""

from __future__ import annotations

import asyncio
import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.intake.app import create_app
from services.intake.store import raw_inputs
from shared.db import transaction
from shared.settings import Settings
from tests.support.emails import RECIPIENT, sample_emails
from tests.support.intake import free_port, one_school
from tests.support.running import jetstream, stream_events, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return one_school(
        settings,
        tmp_path,
        intake_email_addresses={RECIPIENT: "st-marks"},
        intake_smtp_port=free_port(),
        intake_max_email_bytes=64 * 1024,
        intake_rate_burst=1000,
    )


async def kept(runtime) -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(raw_inputs))).all())


def a_concern_email(words: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "A Parent <parent@example.org>"
    message["To"] = RECIPIENT
    message["Subject"] = "Messages in a group chat"
    message.set_content(words)
    return message


def send(settings: Settings, message: EmailMessage, *, to: str = RECIPIENT) -> None:
    assert settings.intake_smtp_port is not None
    with smtplib.SMTP("127.0.0.1", settings.intake_smtp_port, timeout=10) as client:
        client.send_message(message, to_addrs=[to])


async def test_a_mailed_concern_is_kept_and_published_as_an_email_concern(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with app.router.lifespan_context(app), jetstream(settings) as (_, js):
        await asyncio.to_thread(send, settings, a_concern_email("Hurtful words, synthetic marker-7731"))
        [event] = await eventually(
            lambda: stream_events(js, settings, "concern.received"), until=lambda e: len(e) == 1, what="concern"
        )
        [raw] = await kept(runtime)
    assert event.payload.channel == "email" and event.payload.kind == "not_sure"
    assert "marker-7731" in event.payload.details and event.payload.reporter.contact == "parent@example.org"
    assert raw.status == "accepted" and raw.content_type == "message/rfc822" and b"marker-7731" in raw.body


async def test_an_unknown_recipient_is_refused_550_and_an_oversize_message_552(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with app.router.lifespan_context(app):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
            await asyncio.to_thread(send, settings, a_concern_email("x"), to="nobody@st-marks.example.org")
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as oversize:
            await asyncio.to_thread(send, settings, a_concern_email("y" * 100_000))
        assert await kept(runtime) == []
    [(code, reason)] = unknown.value.recipients.values()
    assert code == 550 and b"No school" in reason
    assert oversize.value.smtp_code == 552


async def test_an_auto_reply_is_kept_but_never_becomes_a_concern(settings: Settings) -> None:
    app, runtime = create_app(settings)
    message = a_concern_email("I am out of the office.")
    message["Auto-Submitted"] = "auto-replied"
    async with app.router.lifespan_context(app), jetstream(settings) as (_, js):
        await asyncio.to_thread(send, settings, message)
        [raw] = await kept(runtime)
        await runtime.relay.flush()
        assert await stream_messages(js, settings.stream_name) == 0
    assert raw.status == "rejected" and "Auto-Submitted" in raw.rejection_reason


async def test_200_uploaded_emails_each_become_one_concern_or_one_kept_refusal(settings: Settings) -> None:
    app, runtime = create_app(settings)
    samples = list(sample_emails(200))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        jetstream(settings) as (_, js),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as http,
    ):
        responses = [
            await http.post(
                "/api/v1/inbound-email",
                params={"to": RECIPIENT},
                content=sample.raw,
                headers={"content-type": "message/rfc822"},
            )
            for sample in samples
        ]
        wanted = sum(sample.expected == "concern" for sample in samples)
        events = await eventually(
            lambda: stream_events(js, settings, "concern.received"), until=lambda e: len(e) == wanted, what="all"
        )
        rows = await kept(runtime)
    for sample, response in zip(samples, responses, strict=True):
        expected_status = 202 if sample.expected == "concern" else 422
        assert response.status_code == expected_status, (sample.shape, response.text)
        if sample.expected != "concern":
            assert response.json()["detail"], sample.shape
    assert len(rows) == 200 and {row.status for row in rows} == {"accepted", "rejected"}
    assert all(row.rejection_reason for row in rows if row.status == "rejected")
    assert len({event.payload.raw_input_id for event in events}) == wanted


async def test_an_upload_to_an_address_no_school_uses_is_refused(settings: Settings) -> None:
    app, _ = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://i") as http:
        response = await http.post(
            "/api/v1/inbound-email",
            content=a_concern_email("x").as_bytes().replace(RECIPIENT.encode(), b"other@example.org"),
            headers={"content-type": "message/rfc822"},
        )
    assert response.status_code == 404 and json.loads(response.text)["raw_input_id"] is None


async def test_the_same_message_delivered_twice_is_one_concern(settings: Settings) -> None:
    app, runtime = create_app(settings)
    message = a_concern_email("Sent twice by a retrying mail server.")
    async with app.router.lifespan_context(app):
        await asyncio.to_thread(send, settings, message)
        await asyncio.to_thread(send, settings, message)
        rows = await kept(runtime)
    assert [row.status for row in rows] == ["accepted"]
