"""Web Push end to end: a browser subscribes through a link it was sent, a local push service verifies the
VAPID JWT and decrypts the RFC 8291 payload, and a subscription the push service calls gone is forgotten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from services.notifications.app import create_app
from services.notifications.channels.push import WebPushChannel
from services.notifications.links import AckLinks
from services.notifications.vapid import application_server_key, load_or_create
from services.notifications.wiring import ChannelKit
from shared.contracts.envelope import utc_now
from shared.contracts.events import NotificationRequested, PersonRef
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually
from tests.support.webpush import local_push_service

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-dsl", name="Ms Example Lead", role="designated_safeguarding_lead")


def requested(*, channel: str, address: str) -> NotificationRequested:
    return notification_requested(channel=channel, address=address, recipient=PERSON, reference="SG-2026-PUSHTEST")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"mail_sink_dir": str(tmp_path / "mail")})


async def test_a_subscribed_browser_gets_an_encrypted_lock_screen_safe_alert_and_a_gone_one_is_forgotten(
    settings: Settings,
) -> None:
    app, runtime = create_app(settings)
    key_file = Path(settings.mail_sink_dir).parent / "vapid-private.pem"
    assert settings.signing_key is not None
    signer = AckLinks(settings.signing_key.encode())
    email = requested(channel="email", address="lead@example.org")
    async with local_push_service() as pushes, running(runtime), jetstream(settings) as (_, js):
        browser = pushes.new_browser()
        await publish_raw(js, settings, email)
        await eventually(lambda: stream_events(js, settings, "notification.sent"), what="the email alert sent")
        proof = {
            "notification_id": email.payload.notification_id,
            "token": signer.token(email.payload.notification_id, person_id="p-dsl", now=utc_now()),
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifications") as web:
            page = await web.get("/staff/")
            server_key = (await web.get("/api/v1/push/key")).json()["application_server_key"]
            forged = await web.post(
                "/api/v1/push/subscriptions",
                json={"subscription": browser.subscription_json(), **proof, "token": "x" * 32},
            )
            subscribed = await web.post(
                "/api/v1/push/subscriptions", json={"subscription": browser.subscription_json(), **proof}
            )
        assert page.status_code == 200 and "manifest.json" in page.text
        assert forged.status_code == 403
        assert subscribed.status_code == 201 and subscribed.json() == {"person_id": "p-dsl"}

        push = requested(channel="push", address="p-dsl")
        await publish_raw(js, settings, push)
        await eventually(
            lambda: stream_events(js, settings, "notification.sent"), until=lambda s: len(s) == 2, what="push sent"
        )
        [alert] = pushes.received
        assert alert.payload["title"] == "URGENT safeguarding concern: SG-2026-PUSHTEST"
        assert alert.payload["url"].startswith(
            f"{settings.console_url}/api/v1/notifications/{push.payload.notification_id}/ack"
        )
        assert "Example" not in str(alert.payload) and "example.org" not in str(alert.payload)
        assert (
            f"k={server_key}" in alert.headers["authorization"]
            and alert.claims["aud"] == pushes.origin
            and alert.headers["urgency"] == "high"
            and alert.headers["topic"]
        )
        assert pushes.refused == []

        pushes.answer(browser, 410)
        again = requested(channel="push", address="p-dsl")
        await publish_raw(js, settings, again)
        [failed] = await eventually(lambda: stream_events(js, settings, "notification.failed"), what="gone push failed")
        nobody = requested(channel="push", address="p-dsl")
        await publish_raw(js, settings, nobody)
        failures = await eventually(
            lambda: stream_events(js, settings, "notification.failed"),
            until=lambda f: len(f) == 2,
            what="no subscriptions left",
        )
    # The push channel kept its connection while the service ran; the service's stop closed it.
    [kit] = [worker for worker in runtime._workers if isinstance(worker, ChannelKit)]
    assert isinstance(kit.channels["push"], WebPushChannel) and not kit.channels["push"].holds_connections
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert application_server_key(load_or_create(key_file)) == server_key  # kept: a restart signs with it too
    assert failed.payload.notification_id == again.payload.notification_id
    assert "gone (HTTP 410)" in failed.payload.reason and failed.payload.retryable is False
    assert "no push subscription" in failures[1].payload.reason


async def test_an_operator_token_subscribes_for_a_named_person_and_only_the_owner_unsubscribes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFEGUARD_PUSH_OPERATOR_TOKEN", "operator-secret")
    app, runtime = create_app(settings)
    operator = {"Authorization": "Bearer operator-secret"}
    async with local_push_service() as pushes, running(runtime, subscribers=False):
        browser = pushes.new_browser()
        subscription = browser.subscription_json()
        short_key = {**subscription, "keys": {**subscription["keys"], "p256dh": "AAAA"}}
        plain_http = {**subscription, "endpoint": "http://push.example.org/x"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifications") as web:

            async def subscribe(body: dict[str, object], headers: dict[str, str]) -> httpx.Response:
                return await web.post("/api/v1/push/subscriptions", json=body, headers=headers)

            async def unsubscribe(person_id: str) -> httpx.Response:
                body = {"endpoint": browser.endpoint, "person_id": person_id}
                return await web.request("DELETE", "/api/v1/push/subscriptions", json=body, headers=operator)

            wrong = await subscribe({"subscription": subscription, "person_id": "p-x"}, {"Authorization": "Bearer no"})
            bad_key = await subscribe({"subscription": short_key, "person_id": "p-x"}, operator)
            insecure = await subscribe({"subscription": plain_http, "person_id": "p-x"}, operator)
            made = await subscribe({"subscription": subscription, "person_id": "p-x"}, operator)
            not_owner = await unsubscribe("p-y")
            removed = await unsubscribe("p-x")
            again = await unsubscribe("p-x")
    assert wrong.status_code == 403 and bad_key.status_code == 422 and insecure.status_code == 422
    assert made.status_code == 201 and made.json() == {"person_id": "p-x"}
    assert (not_owner.status_code, removed.status_code, again.status_code) == (404, 204, 404)
