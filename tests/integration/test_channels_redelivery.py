"""Each channel through the running service into a real local server, every request delivered five times:
one message arrives at each sink, and no log line carries the recipient's phone number, address or name."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.notifications import mailbox
from services.notifications.app import create_app
from services.notifications.local_mail import serve
from services.notifications.local_sms import create_fake_provider
from services.notifications.subscriptions import PushSubscription, SqlPushSubscriptions
from shared.contracts.envelope import utc_now
from shared.contracts.events import NotificationRequested, PersonRef
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.local_http import serving
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually
from tests.support.webpush import local_push_service

pytestmark = pytest.mark.integration
REDELIVERIES = 5
PERSON = PersonRef(person_id="p-lead", name="Mx Example Lead", role="designated_safeguarding_lead")
ADDRESS = {"email": "example.lead@example.org", "sms": "+44 7700 900777", "push": "p-lead"}
PERSONAL = ["example.lead@", "7700", "900777", "Example Lead"]


def requested(channel: str) -> NotificationRequested:
    return notification_requested(channel=channel, address=ADDRESS[channel], recipient=PERSON)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"mail_sink_dir": str(tmp_path / "unused-mail-folder")})


async def test_a_request_delivered_five_times_sends_one_message_on_each_channel(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = create_fake_provider(account_sid="AC-redelivery", auth_token="token")
    smtp = await serve(tmp_path / "smtp")
    async with serving(provider) as sms_url, local_push_service() as pushes:
        environment = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.sockets[0].getsockname()[1]),
            "SMTP_SECURITY": "none",
            "SMS_BASE_URL": sms_url,
            "SMS_ACCOUNT_SID": "AC-redelivery",
            "SMS_AUTH_TOKEN": "token",
        }
        for name, value in environment.items():
            monkeypatch.setenv(f"SAFEGUARD_{name}", value)
        _app, runtime = create_app(settings)
        browser = pushes.new_browser()
        requests = [requested(channel) for channel in ("email", "sms", "push")]
        async with running(runtime), jetstream(settings) as (_, js):
            keys = browser.subscription_json()["keys"]
            await SqlPushSubscriptions(runtime.sessions).save(
                PushSubscription(browser.endpoint, p256dh=keys["p256dh"], auth=keys["auth"]),
                person_id="p-lead",
                at=utc_now(),
            )
            for attempt in range(REDELIVERIES):
                for request in requests:
                    # A new Nats-Msg-Id each time: the broker's dedupe is bypassed, so the service's own must hold.
                    await publish_raw(js, settings, request, msg_id=f"{request.event_id}-{attempt}")
            await eventually(
                lambda: js.consumer_info(settings.stream_name, "notifications-requests"),
                until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
                what="every redelivery handled",
            )
            sent = await eventually(
                lambda: stream_events(js, settings, "notification.sent"),
                until=lambda events: len(events) >= len(requests),
                what="one notification.sent per channel",
            )
    smtp.close()
    await smtp.wait_closed()
    assert sorted(e.payload.channel for e in sent) == ["email", "push", "sms"]
    assert len(mailbox.kept(tmp_path / "smtp")) == 1
    assert len(provider.state.messages) == 1 and provider.state.messages[0]["to"] == "+447700900777"
    assert len(pushes.received) == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "notification" in logged  # the service did log its work ...
    for personal in PERSONAL:
        assert personal not in logged  # ... by ids and references only
