"""Notifications against real NATS + PostgreSQL: one delivery per notification, one acknowledgement."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.notifications.app import create_app
from services.notifications.links import AckLinks
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.settings import Settings
from shared.tracing import trace_id_of
from tests.support.factories import concern_received, notification_requested
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def request(*, notification_id: str, cause: Any, channel: str = "email", address: str = "dsl@example.org") -> Any:
    recipient = PersonRef(person_id="s-bird", name="Mr S Bird", role="designated_safeguarding_lead")
    return notification_requested(
        channel=channel,
        address=address,
        recipient=recipient,
        notification_id=notification_id,
        reference=cause.payload.reference,
        urgency="high",
        reason="rule learner-online-bullying",
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


async def test_acknowledging_twice_from_the_links_page_records_one_acknowledgement(settings: Settings) -> None:
    app, runtime = create_app(settings)
    assert settings.signing_key is not None
    token = AckLinks(settings.signing_key.encode()).token("n-ack", person_id="s-bird", now=utc_now())
    other_person = AckLinks(settings.signing_key.encode()).token("n-ack", person_id="r-crane", now=utc_now())
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, request(notification_id="n-ack", cause=concern_received()))
        await eventually(lambda: stream_events(js, settings, "notification.sent"), what="sent")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
            page = await client.get(f"/api/v1/notifications/n-ack/ack?token={token}")
            not_theirs = await client.get(f"/api/v1/notifications/n-ack/ack?token={other_person}")
            check = re.search(r"name=page_check value='([^']+)'", page.text)
            assert check is not None
            form = {"page_check": check.group(1)}
            url = f"/api/v1/notifications/n-ack/ack?token={token}"
            cross_site = await client.post(url, data=form, headers={"Origin": "https://elsewhere.example.org"})
            no_page = await client.post(url, headers={"Origin": "http://notifications"})
            forged = await client.post("/api/v1/notifications/n-ack/ack?token=0000000000000000", data=form)
            first = await client.post(url, data=form, headers={"Origin": "http://notifications"})
            second = await client.post(url, data=form, headers={"Referer": f"http://notifications{url}"})
        assert page.status_code == 200 and "<button" in page.text
        assert not_theirs.status_code == 403
        assert (cross_site.status_code, no_page.status_code, forged.status_code) == (403, 403, 403)
        assert first.json() == {"notification_id": "n-ack", "acknowledged": True, "already": False}
        assert second.json()["already"] is True
        acks = await eventually(lambda: stream_events(js, settings, "notification.acknowledged"), what="ack event")
    assert len(acks) == 1 and acks[0].payload.acknowledged_by == "s-bird"


async def test_an_expired_link_says_so_and_offers_sign_in(settings: Settings) -> None:
    app, runtime = create_app(settings)
    assert settings.signing_key is not None
    links = AckLinks(settings.signing_key.encode())
    async with running(runtime), jetstream(settings) as (_, js):
        await publish_raw(js, settings, request(notification_id="n-old", cause=concern_received()))
        await eventually(lambda: stream_events(js, settings, "notification.sent"), what="sent")
        stale = links.token("n-old", person_id="s-bird", now=utc_now() - timedelta(days=8))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
            page = await client.get(f"/api/v1/notifications/n-old/ack?token={stale}")
            short = await client.get(f"/n/n-old?t={stale}", follow_redirects=True)
    assert page.status_code == 410 and "expired" in page.text and "Sign in to Safeguard" in page.text
    assert short.status_code == 410
