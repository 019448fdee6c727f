"""Kill -9 of notifications in the middle of 200 deliveries, then restart: every request reaches its sink exactly
once — SMS at the provider (Idempotency-Key), email at the SMTP server (the end of data is a recorded commit point).

Notifications runs as a real process against a local SMTP server (aiosmtpd) and a local Twilio-style SMS
provider that answers slowly, so the kill lands while deliveries are in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from services.launcher.ports import free_port
from services.notifications import mailbox
from services.notifications.local_mail import serve
from services.notifications.local_sms import create_fake_provider
from shared.contracts.events import PersonRef
from shared.db import asyncpg_dsn, ensure_database
from shared.settings import Settings
from tests.conftest import drop_test_resources, make_settings
from tests.e2e.conftest import System, environment
from tests.support.factories import notification_requested
from tests.support.local_http import serving
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
REQUESTS_PER_CHANNEL = 100
PERSON = PersonRef(person_id="p-crash", name="Mx Example Crash", role="designated_safeguarding_lead")


def slow(app: FastAPI, *, seconds: float) -> FastAPI:
    """The provider, taking `seconds` over each message (a real one takes longer)."""

    @app.middleware("http")
    async def take_time(request: Request, call_next: Any) -> Any:
        await asyncio.sleep(seconds)
        return await call_next(request)

    return app


def message_ids(folder: Path) -> Counter[str]:
    return Counter(str(mailbox.read(mail.path)["Message-ID"]) for mail in mailbox.kept(folder))


async def statuses(settings: Settings) -> Counter[str]:
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        rows = await connection.fetch("select status from notifications.deliveries")
    finally:
        await connection.close()
    return Counter(row["status"] for row in rows)


async def healthy(system: System) -> bool:
    process = system.processes["notifications"]
    assert process.poll() is None, system.log_of("notifications")[-3000:]
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"{system.notifications_url}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_kill_9_mid_batch_then_restart_delivers_every_request_once(tmp_path: Path) -> None:
    settings = make_settings(f"crash_{tmp_path.name[-10:]}", notifications_http_port=free_port())
    await ensure_database(settings.database_url)
    provider = slow(create_fake_provider(account_sid="AC-crash", auth_token="token"), seconds=0.05)
    smtp_folder = tmp_path / "smtp"
    smtp = await serve(smtp_folder)
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        async with serving(provider) as sms_url, jetstream(settings) as (_, js):
            env = environment(settings, tmp_path / "mail") | {
                "SAFEGUARD_SMTP_HOST": "127.0.0.1",
                "SAFEGUARD_SMTP_PORT": str(smtp.sockets[0].getsockname()[1]),
                "SAFEGUARD_SMTP_SECURITY": "none",
                "SAFEGUARD_SMS_BASE_URL": sms_url,
                "SAFEGUARD_SMS_ACCOUNT_SID": "AC-crash",
                "SAFEGUARD_SMS_AUTH_TOKEN": "token",
                "SAFEGUARD_DELIVERY_CONCURRENCY": "8",
                "SAFEGUARD_DELIVERY_SENDING_TIMEOUT_SECONDS": "3",
                "SAFEGUARD_DELIVERY_POLL_SECONDS": "0.2",
            }
            system = System(settings, env, logs)
            system.start("notifications")
            await eventually(lambda: healthy(system), timeout=60, interval=0.2, what="notifications up")
            requests = [
                notification_requested(channel=channel, address=address, recipient=PERSON)
                for channel, address in (("email", "crash@example.org"), ("sms", "+44 7700 900555"))
                for _ in range(REQUESTS_PER_CHANNEL)
            ]
            await asyncio.gather(*(publish_raw(js, settings, request) for request in requests))

            def reached_sinks() -> int:
                return len(provider.state.messages) + len(mailbox.kept(smtp_folder))

            async def some_delivered() -> int:
                return reached_sinks()

            await eventually(some_delivered, until=lambda n: n >= 40, interval=0.01, what="deliveries under way")
            os.kill(system.processes["notifications"].pid, signal.SIGKILL)
            system.processes["notifications"].wait()
            at_kill = reached_sinks()
            at_crash = await statuses(settings)
            cut_off, committing = at_crash["sending"] + at_crash["committing"], at_crash["committing"]
            system.processes.pop("notifications")

            system.start("notifications")
            final = await eventually(
                lambda: statuses(settings),
                until=lambda found: found["sent"] + found["sent_unconfirmed"] == 2 * REQUESTS_PER_CHANNEL,
                timeout=90,
                interval=0.2,
                what="every delivery recorded sent",
            )
            sent = await eventually(
                lambda: stream_events(js, settings, "notification.sent", limit=1000),
                until=lambda found: len(found) >= 2 * REQUESTS_PER_CHANNEL,
                what="every notification.sent published",
            )
            system.stop("notifications")
    finally:
        smtp.close()
        await smtp.wait_closed()
        await drop_test_resources(settings)
    print(  # the figures for the report (pytest -s)
        f"\nkilled after {at_kill} of 200 reached the sinks, {cut_off} attempts cut off mid-send, "
        f"{committing} of them past the end of data ({final['sent_unconfirmed']} recorded sent, unconfirmed); "
        f"SMTP sink received {sum(message_ids(smtp_folder).values())} messages for 100 Message-IDs; "
        f"SMS provider took {len(provider.state.messages)} messages, absorbed {provider.state.repeats} repeats"
    )
    assert 0 < at_kill < 2 * REQUESTS_PER_CHANNEL, "the kill landed mid-batch"
    assert final["sent"] + final["sent_unconfirmed"] == 2 * REQUESTS_PER_CHANNEL
    assert final["sent_unconfirmed"] == committing, "an attempt cut off past the end of data is never re-sent"
    assert len(provider.state.messages) == REQUESTS_PER_CHANNEL, "each SMS exactly once at the provider"
    assert len({m["to"] for m in provider.state.messages}) == 1
    email = message_ids(smtp_folder)
    wanted = {f"<{r.payload.notification_id}@safeguard.local>" for r in requests if r.payload.channel == "email"}
    assert set(email) == wanted, "every email arrived, each under its notification's own Message-ID"
    assert sum(email.values()) == REQUESTS_PER_CHANNEL, "each email exactly once at the SMTP server"
    assert Counter(e.payload.notification_id for e in sent) == Counter(
        {r.payload.notification_id: 1 for r in requests}
    ), "one notification.sent per request"
