"""SMS through the Twilio-style adapter into the local fake provider on a free port."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from services.notifications.channels import Delivery, DeliveryFailed
from services.notifications.channels.sms import TwilioStyleSms, one_segment
from services.notifications.domain import render
from services.notifications.local_sms import create_fake_provider
from shared.contracts.events import NotificationRequestedPayload, PersonRef
from tests.support.local_http import serving

pytestmark = pytest.mark.integration
CONSOLE = "https://safeguard.st-marks.example.org"


def delivery(*, phone: str) -> Delivery:
    notification_id = str(uuid.uuid4())
    request = NotificationRequestedPayload(
        notification_id=notification_id,
        case_id="case-sms",
        reference="SG-2026-SMSTEST1",
        recipient=PersonRef(person_id="p-deputy", name="Mx Example Deputy", role="deputy_dsl"),
        channel="sms",
        address=phone,
        urgency="immediate",
        reason="escalation rung 1",
        escalation_rung=1,
    )
    message = render(request, console_url=CONSOLE, ack_token="k3x9a1.AbCdEfGhIjKlMnOpQrStUv")
    return Delivery(notification_id, phone, message)


def adapter(base_url: str, *, token: str = "secret-token") -> TwilioStyleSms:
    return TwilioStyleSms(
        base_url=base_url, account_sid="AC-test", auth_token=token, sender="Safeguard", timeout_seconds=5
    )


async def test_an_sms_is_one_segment_with_the_reference_and_link_and_nothing_personal(tmp_path: Path) -> None:
    provider = create_fake_provider(account_sid="AC-test", auth_token="secret-token", sink_file=tmp_path / "sms.jsonl")
    sent = delivery(phone="+44 7700 900123")
    async with serving(provider) as base_url:
        provider_id = await adapter(base_url).send(sent)
    [message] = provider.state.messages
    assert provider_id == message["sid"] and message["to"] == "+447700900123" and message["from"] == "Safeguard"
    assert message["body"] == sent.message.sms and one_segment(message["body"])
    assert "SG-2026-SMSTEST1" in message["body"] and f"{CONSOLE}/n/{sent.notification_id}?t=" in message["body"]
    assert "Example" not in message["body"] and "7700" not in message["body"]
    assert [json.loads(line)["sid"] for line in (tmp_path / "sms.jsonl").read_text().splitlines()] == [provider_id]


@pytest.mark.parametrize(
    ("phone", "token", "reason", "retryable"),
    [
        ("+15550001234", "secret-token", "code 21211", False),
        ("+447700900123", "wrong-token", "HTTP 401", False),
        ("not a number", "secret-token", "not a phone number", False),
    ],
)
async def test_a_refused_sms_says_why_and_whether_to_retry(
    phone: str, token: str, reason: str, retryable: bool
) -> None:
    provider = create_fake_provider(account_sid="AC-test", auth_token="secret-token")
    async with serving(provider) as base_url:
        with pytest.raises(DeliveryFailed) as failed:
            await adapter(base_url, token=token).send(delivery(phone=phone))
    assert reason in str(failed.value) and failed.value.retryable is retryable and "7700" not in str(failed.value)
    assert provider.state.messages == []


async def test_an_unreachable_provider_is_worth_retrying() -> None:
    async with serving(create_fake_provider(account_sid="AC-test", auth_token="t")) as base_url:
        pass
    with pytest.raises(DeliveryFailed) as failed:
        await adapter(base_url).send(delivery(phone="+447700900123"))
    assert failed.value.retryable is True
