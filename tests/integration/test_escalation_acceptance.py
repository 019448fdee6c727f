"""Escalation end to end, with real local servers: routing and notifications running against NATS and PostgreSQL,
email into aiosmtpd, SMS into a Twilio-style provider, push into a push service that checks VAPID and decrypts.

- An urgent concern nobody acknowledges reaches the deputies' phones (push and SMS) at the deadline.
- Acknowledged through the emailed link before the deadline, it reaches the deputies not at all.
- When the whole ladder has been told and nobody acknowledges, the standing alert repeats, to the trust too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.notifications import mailbox
from services.notifications.app import create_app
from services.notifications.local_mail import serve
from services.notifications.local_sms import create_fake_provider
from services.notifications.subscriptions import PushSubscription, SqlPushSubscriptions
from services.routing.app import RoutingService
from shared.contracts.envelope import utc_now
from shared.settings import Settings
from tests.integration.test_timers import Clock, acknowledge_deadlines, start, stop
from tests.support.factories import concern_received
from tests.support.local_http import serving
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually
from tests.support.webpush import LocalPushService, local_push_service

pytestmark = pytest.mark.integration
DEPUTIES = {"r-crane": "+447700900102", "l-hammond": "+447700900103"}
STAFF = ("s-bird", "r-crane", "l-hammond", "headteacher")


@dataclass
class Stack:
    settings: Settings
    clock: Clock
    routing: RoutingService
    notifications: FastAPI
    pushes: LocalPushService
    browsers: dict[str, str]  # browser name -> person id
    sms: FastAPI
    mail: Path
    js: Any

    def pushed_to(self, person_id: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.pushes.received if self.browsers[r.browser] == person_id]

    def texted_to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.sms.state.messages if m["to"] == number]

    def mailed_to(self, address: str) -> list[mailbox.KeptMail]:
        return [m for m in mailbox.kept(self.mail) if m.to == address]


@asynccontextmanager
async def stack(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """Routing (its clock in the test's hands) and notifications, wired to local SMTP, SMS and push servers."""
    sms = create_fake_provider(account_sid="AC-accept", auth_token="token")
    smtp = await serve(tmp_path / "smtp")
    async with serving(sms) as sms_url, local_push_service() as pushes:
        for name, value in {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.sockets[0].getsockname()[1]),
            "SMTP_SECURITY": "none",
            "SMS_BASE_URL": sms_url,
            "SMS_ACCOUNT_SID": "AC-accept",
            "SMS_AUTH_TOKEN": "token",
            "DELIVERY_POLL_SECONDS": "0.2",
        }.items():
            monkeypatch.setenv(f"SAFEGUARD_{name}", value)
        app, runtime = create_app(settings.model_copy(update={"mail_sink_dir": str(tmp_path / "unused")}))
        clock = Clock()
        async with running(runtime), jetstream(settings) as (_, js):
            browsers = {}
            for person_id in STAFF:
                browser = pushes.new_browser()
                keys = browser.subscription_json()["keys"]
                subscription = PushSubscription(browser.endpoint, p256dh=keys["p256dh"], auth=keys["auth"])
                await SqlPushSubscriptions(runtime.sessions).save(subscription, person_id=person_id, at=utc_now())
                browsers[browser.endpoint.rsplit("/", 1)[1]] = person_id
            routing = await start(settings, clock)
            try:
                yield Stack(settings, clock, routing, app, pushes, browsers, sms, tmp_path / "smtp", js)
            finally:
                await stop(routing)
    smtp.close()
    await smtp.wait_closed()


async def an_urgent_concern_for_the_dsl(stack: Stack) -> Any:
    """Unwanted contact, no immediate risk: high urgency, the DSL alone at first, the deputies next."""
    # Received at the routing clock's time: the deadlines count from it (at night the wall would put them before
    # the clock's 09:00, already due at triage).
    concern = concern_received(kind="unwanted_contact", immediate_risk="no", received_at=stack.clock.now)
    await publish_raw(stack.js, stack.settings, concern)
    [triaged] = await eventually(lambda: stream_events(stack.js, stack.settings, "case.triaged"), what="triage")
    assert triaged.payload.urgency == "high"
    assert [r.person_id for r in triaged.payload.recipients] == ["s-bird"]
    await eventually(partial(seen, stack.pushed_to, "s-bird"), what="the DSL's push")
    await eventually(partial(seen, stack.texted_to, "+447700900101"), what="the DSL's SMS")
    return triaged


async def seen(look: Callable[[str], list[Any]], key: str) -> list[Any]:
    """What a sink holds for `key` now (for polling with eventually)."""
    return look(key)


async def pass_the_deadline(stack: Stack, case_id: str) -> None:
    pending = [r for r in await acknowledge_deadlines(stack.routing, case_id) if r.status == "pending"]
    stack.clock.now = max(stack.clock.now, *(r.due_at for r in pending)) + timedelta(seconds=1)
    await stack.routing.scheduler.fire_due()


async def test_nobody_acknowledges_so_the_deputies_get_push_and_sms_at_the_deadline(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(settings, tmp_path, monkeypatch) as s:
        triaged = await an_urgent_concern_for_the_dsl(s)
        assert not any(s.pushed_to(d) or s.texted_to(n) for d, n in DEPUTIES.items()), "not before the deadline"
        await pass_the_deadline(s, triaged.payload.case_id)
        for deputy, number in DEPUTIES.items():
            [push] = await eventually(partial(seen, s.pushed_to, deputy), what=f"{deputy}'s push")
            [text] = await eventually(partial(seen, s.texted_to, number), what=f"{deputy}'s SMS")
            reference = triaged.payload.reference
            assert reference in push["title"] and "escalated" in push["title"]
            assert text["body"].startswith("ESCALATED") and reference in text["body"]


async def test_an_acknowledgement_through_the_link_before_the_deadline_tells_the_deputies_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(settings, tmp_path, monkeypatch) as s:
        triaged = await an_urgent_concern_for_the_dsl(s)
        [email] = await eventually(partial(seen, s.mailed_to, "s.bird@st-marks.example.org"), what="DSL email")
        [link] = [u for u in mailbox.links(mailbox.read(email.path)) if "/ack?token=" in u]
        path = link.split("://", 1)[1].split("/", 1)[1]
        transport = httpx.ASGITransport(app=s.notifications)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as web:
            page = await web.get(f"/{path}")
            check = re.search(r"name=page_check value='([^']+)'", page.text)
            assert check is not None
            confirmed = await web.post(
                f"/{path}", data={"page_check": check.group(1)}, headers={"Origin": "http://notifications"}
            )
        assert confirmed.json()["acknowledged"] is True
        await eventually(
            lambda: acknowledge_deadlines(s.routing, triaged.payload.case_id),
            until=lambda rows: bool(rows) and all(r.status == "cancelled" for r in rows),
            what="the acknowledgement deadline cancelled",
        )
        s.clock.now += timedelta(hours=3)
        await s.routing.scheduler.fire_due()
        assert await stream_events(s.js, s.settings, "case.escalated") == []
        assert not any(s.pushed_to(d) or s.texted_to(n) for d, n in DEPUTIES.items())


async def test_when_the_ladder_runs_out_the_alert_repeats_to_everyone_and_the_trust(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(settings, tmp_path, monkeypatch) as s:
        case_id = (await an_urgent_concern_for_the_dsl(s)).payload.case_id
        for _ in range(3):  # deputies, headteacher, then nobody is left
            await pass_the_deadline(s, case_id)
        await eventually(lambda: stream_events(s.js, s.settings, "case.unacknowledged"), what="the standing alert")
        trust = "education-safeguarding@example.org"
        [first] = await eventually(partial(seen, s.mailed_to, trust), what="the trust told")
        s.clock.now += timedelta(minutes=s.settings.unacknowledged_alert_minutes, seconds=1)
        await s.routing.scheduler.fire_due()
        again = await eventually(partial(seen, s.mailed_to, trust), until=lambda m: len(m) == 2, what="repeated")
        for person_id in STAFF:
            alerts = [p for p in s.pushed_to(person_id) if "NOT ACKNOWLEDGED" in p["title"]]
            assert len(alerts) == 2, person_id
    assert "STILL NOT ACKNOWLEDGED" in first.subject and again[1].subject == first.subject
