"""This device's push subscription: the console hands a browser's subscription to notifications over NATS with a
signed assertion for the signed-in person; an alert for that person then reaches the browser, and stopping alerts
removes it. Real NATS and PostgreSQL, notifications' own runtime, and a local push service that decrypts RFC 8291.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.console.store import SCHEMA
from services.notifications.app import create_app as notifications_app
from services.notifications.subscriptions import SqlPushSubscriptions
from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.contracts.account_events import AccountChanged
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.inbox_outbox import InboxOutbox
from shared.settings import Settings
from tests.support.console import Console, add_user, console_running, csrf_of, sign_in
from tests.support.factories import notification_requested
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually
from tests.support.webpush import local_push_service

pytestmark = pytest.mark.integration
DSL = PersonRef(person_id="s-bird", name="Mr S Bird", role="designated_safeguarding_lead")
JSON = {"Accept": "application/json"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"mail_sink_dir": str(tmp_path / "mail")})


async def changes(console: Console) -> list[AccountChanged]:
    """The account.changed events the console has put in its outbox, oldest first."""
    outbox = InboxOutbox(SCHEMA).outbox
    query = sa.select(outbox.c.body).where(outbox.c.event_type == AccountChanged.TYPE).order_by(outbox.c.position)
    async with console.runtime.sessions() as session:
        return [AccountChanged.model_validate_json(body) for body in (await session.execute(query)).scalars()]


async def ask_notifications(console: Console, document: dict[str, Any]) -> dict[str, Any]:
    """Send a push request as anyone on the console's connection could, bypassing the console's own checks."""
    subject = console.runtime.subjects.notifications_push
    reply = await console.runtime.broker.request(json.dumps(document).encode(), subject, timeout=10.0)
    answer: dict[str, Any] = json.loads(reply.body)
    return answer


async def test_a_browser_subscribed_through_the_console_gets_the_persons_alerts_until_it_stops(
    settings: Settings,
) -> None:
    _, notifications = notifications_app(settings)
    stored = SqlPushSubscriptions(notifications.sessions)
    async with local_push_service() as pushes, running(notifications), console_running(settings) as console:
        await add_user(console, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
        await sign_in(console, "dsl@example.org")
        browser = pushes.new_browser()
        page = await console.client.get("/me/device")
        form = {"csrf_token": csrf_of(page.text), "action": "subscribe"}
        subscribed = await console.client.post(
            "/me/device/push", data={**form, "subscription": json.dumps(browser.subscription_json())}, headers=JSON
        )
        held = await stored.for_person("s-bird")

        alert = notification_requested(channel="push", address="s-bird", recipient=DSL, reference="SG-2026-DEVICE01")
        async with jetstream(settings) as (_, js):
            await publish_raw(js, settings, alert)
            await eventually(lambda: stream_events(js, settings, "notification.sent"), what="the push sent")

        stop = {"csrf_token": form["csrf_token"], "action": "unsubscribe", "endpoint": browser.endpoint}
        stopped = await console.client.post("/me/device/push", data=stop, headers=JSON)
        left = await stored.for_person("s-bird")
        again = await console.client.post("/me/device/push", data=stop, headers=JSON)
        recorded = await changes(console)

    assert page.status_code == 200 and 'action="/me/device/push"' in page.text
    found = re.search(r'data-key="([A-Za-z0-9_-]+)"', page.text)
    assert found, "the page carries no VAPID key to subscribe with"
    assert subscribed.status_code == 200 and subscribed.json() == {"ok": True, "error": ""}
    assert [s.endpoint for s in held] == [browser.endpoint]
    [received] = pushes.received
    assert received.payload["title"].endswith("SG-2026-DEVICE01")
    assert "Bird" not in json.dumps(received.payload)
    assert f"k={found.group(1)}" in received.headers["authorization"]  # the key the page gave the browser
    assert stopped.status_code == 200 and left == []
    assert again.status_code == 404 and again.json()["ok"] is False
    assert [(c.payload.change, c.actor.id, c.payload.person_id) for c in recorded] == [
        ("push_subscribed", "s-bird", "s-bird"),
        ("push_unsubscribed", "s-bird", "s-bird"),
    ]
    assert browser.endpoint not in str([c.to_json() for c in recorded])


async def test_notifications_refuses_a_forged_replayed_or_self_named_request(settings: Settings) -> None:
    _, notifications = notifications_app(settings)
    stored = SqlPushSubscriptions(notifications.sessions)
    async with local_push_service() as pushes, running(notifications), console_running(settings) as console:
        console_key = load_or_create_issuer_key(settings.actor_keys_dir, issuer="console")
        operator_key = load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")

        def token(key: Ed25519PrivateKey, *, issuer: str = "console", audience: str = "notifications") -> str:
            return issue(key, issuer=issuer, person_id="s-bird", school_id="st-marks", now=utc_now(), audience=audience)

        def subscribe(assertion: str, **extra: Any) -> dict[str, Any]:
            browser = pushes.new_browser()
            return {"action": "subscribe", "subscription": browser.subscription_json(), "assertion": assertion, **extra}

        genuine = subscribe(token(console_key))
        plain = {"endpoint": "http://push.example.org/x", "keys": {}}
        answers = {
            "first": await ask_notifications(console, genuine),
            "replayed": await ask_notifications(console, genuine),
            "forged": await ask_notifications(console, subscribe(token(Ed25519PrivateKey.generate()))),
            "other_issuer": await ask_notifications(console, subscribe(token(operator_key, issuer="operator"))),
            "for_routing": await ask_notifications(console, subscribe(token(console_key, audience="routing"))),
            "unsigned": await ask_notifications(console, subscribe("")),
            "self_named": await ask_notifications(console, subscribe(token(console_key), person_id="p-other")),
            "not_https": await ask_notifications(console, {**subscribe(token(console_key)), "subscription": plain}),
            "someone_elses": await ask_notifications(
                console,
                {
                    "action": "unsubscribe",
                    "endpoint": genuine["subscription"]["endpoint"],
                    "assertion": issue(
                        console_key,
                        issuer="console",
                        person_id="r-crane",
                        school_id="st-marks",
                        now=utc_now(),
                        audience="notifications",
                        token_id=uuid.uuid4(),
                    ),
                },
            ),
        }
        held = await stored.for_person("s-bird")
    assert answers["first"] == {"ok": True, "subscribed": True}
    codes = {name: answer.get("code") for name, answer in answers.items() if name != "first"}
    assert codes == {
        "replayed": "replayed",
        "forged": "bad_signature",
        "other_issuer": "not_permitted",
        "for_routing": "wrong_audience",
        "unsigned": "unsigned",
        "self_named": "claimed_actor",
        "not_https": "invalid",
        "someone_elses": "not_found",
    }
    assert [s.endpoint for s in held] == [genuine["subscription"]["endpoint"]]
