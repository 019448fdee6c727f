"""Notifications against real NATS + PostgreSQL: one delivery per notification, one acknowledgement."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from services.notifications.app import create_app
from services.notifications.handlers import AckSigner
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import NotificationRequested, NotificationRequestedPayload, PersonRef
from shared.settings import Settings
from shared.tracing import trace_id_of
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def request(*, notification_id: str, cause, channel: str = "email", address: str = "dsl@example.org"):
    return NotificationRequested.new(
        NotificationRequestedPayload(
            notification_id=notification_id,
            case_id="case-1",
            reference=cause.payload.reference,
            recipient=PersonRef(person_id="s-bird", name="Mr S Bird", role="designated_safeguarding_lead"),
            channel=channel,
            address=address,
            urgency="high",
            reason="rule learner-online-bullying",
        ),
        school_id="st-marks",
        aggregate_id=notification_id,
        actor=Actor(id="routing", role="service"),
        occurred_at=utc_now(),
        cause=cause,
    )


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"mail_sink_dir": str(tmp_path / "mail")})


async def test_a_notification_requested_twice_is_delivered_once(settings: Settings) -> None:
    _app, runtime = create_app(settings)
    cause = concern_received()
    notification_id = str(uuid.uuid4())
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, request(notification_id=notification_id, cause=cause))
        await publish_raw(js, settings, request(notification_id=notification_id, cause=cause))
        sent = await eventually(lambda: stream_events(js, settings, "notification.sent"), what="notification.sent")
        info = await eventually(
            lambda: js.consumer_info(settings.stream_name, "notifications-requests"),
            until=lambda i: i.num_pending == 0 and i.num_ack_pending == 0,
            what="requests drained",
        )
        assert info.delivered.stream_seq >= 2
        sent = await stream_events(js, settings, "notification.sent")
    assert len(sent) == 1 and sent[0].payload.notification_id == notification_id
    assert sent[0].correlation_id == cause.correlation_id
    assert trace_id_of(sent[0].traceparent) == trace_id_of(cause.traceparent), "the concern's trace"
    mail = list(Path(settings.mail_sink_dir).glob("*.eml"))
    assert [m.name for m in mail] == [f"{notification_id}.eml"]
    text = mail[0].read_text()
    assert "To: dsl@example.org" in text and "Learner A" not in text and "Hurtful" not in text


async def test_an_undeliverable_address_is_reported_failed(settings: Settings) -> None:
    _app, runtime = create_app(settings)
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, request(notification_id="n-bad", cause=concern_received(), address="nobody"))
        [failed] = await eventually(lambda: stream_events(js, settings, "notification.failed"), what="failed")
    assert "not an email address" in failed.payload.reason and failed.payload.retryable is False


async def test_acknowledging_twice_records_one_acknowledgement(settings: Settings) -> None:
    app, runtime = create_app(settings)
    assert settings.signing_key is not None
    token = AckSigner(settings.signing_key.encode()).token("n-ack")
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, request(notification_id="n-ack", cause=concern_received()))
        await eventually(lambda: stream_events(js, settings, "notification.sent"), what="sent")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
            page = await client.get(f"/api/v1/notifications/n-ack/ack?token={token}")
            forged = await client.post("/api/v1/notifications/n-ack/ack?token=0000000000000000")
            first = await client.post(f"/api/v1/notifications/n-ack/ack?token={token}")
            second = await client.post(f"/api/v1/notifications/n-ack/ack?token={token}")
        assert page.status_code == 200 and "<button" in page.text
        assert forged.status_code == 403
        assert first.json() == {"notification_id": "n-ack", "acknowledged": True, "already": False}
        assert second.json()["already"] is True
        acks = await eventually(lambda: stream_events(js, settings, "notification.acknowledged"), what="ack event")
    assert len(acks) == 1 and acks[0].payload.acknowledged_by == "s-bird"
