"""Delivery receipts against real PostgreSQL and NATS: the local SMS provider's signed status callbacks and the
staff service worker's "shown" receipt make a delivery delivered (notification.delivered, once); an SMS the
provider could not deliver is a permanent failure (notification.failed, so routing moves on)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.notifications.channels import Delivery
from services.notifications.channels.sms import TwilioStyleSms
from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.links import AckLinks
from services.notifications.local_sms import UNDELIVERED_PREFIX, create_fake_provider
from services.notifications.receipts import provider_signature
from services.notifications.receipts_http import SMS_STATUS_PATH, receipts_router
from services.notifications.store import SCHEMA, SqlDeliveries, deliveries
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.local_http import serving
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-receipt", name="Mx Example Receipt", role="designated_safeguarding_lead")
SID, TOKEN = "AC-receipts", "receipt-token"
SIGNER = AckLinks(b"receipt-test-key")


@dataclass
class Rig:
    runtime: ServiceRuntime
    dispatcher: Dispatcher
    provider: FastAPI
    callback_url: str
    js: Any


class ShownPush:
    """A push channel that only records what it was given (the payload a service worker would get)."""

    name = "push"
    resend_safe = True

    def __init__(self) -> None:
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> str:
        self.sent.append(delivery)
        return "push:201"


@asynccontextmanager
async def rig(settings: Settings, push: ShownPush | None = None) -> AsyncIterator[Rig]:
    runtime = ServiceRuntime(settings, service="notifications", schema=SCHEMA)
    provider = create_fake_provider(account_sid=SID, auth_token=TOKEN)
    receipts = FastAPI()
    async with (
        running(runtime, subscribers=False),
        jetstream(settings) as (_, js),
        serving(provider) as provider_url,
        serving(receipts) as receipts_url,
    ):
        callback_url = f"{receipts_url}{SMS_STATUS_PATH}"
        receipts.include_router(
            receipts_router(
                uow=runtime.uow,
                deliveries=SqlDeliveries(),
                signer=SIGNER,
                sms_callback_url=callback_url,
                sms_auth_token=TOKEN,
                clock=utc_now,
            )
        )
        sms = TwilioStyleSms(
            base_url=provider_url,
            account_sid=SID,
            auth_token=TOKEN,
            sender="Safeguard",
            timeout_seconds=5,
            status_callback=callback_url,
        )
        dispatcher = Dispatcher(
            uow=runtime.uow,
            deliveries=SqlDeliveries(),
            channels={"sms": sms, "push": push or ShownPush()},
            signer=SIGNER,
            console_url=receipts_url,
            clock=utc_now,
            rules=DeliveryRules(sending_timeout=timedelta(seconds=30)),
        )
        yield Rig(runtime, dispatcher, provider, callback_url, js)


async def request(rig: Rig, *, channel: str, address: str) -> str:
    event = notification_requested(channel=channel, address=address, recipient=PERSON)
    async with rig.runtime.uow.begin() as work:
        assert await SqlDeliveries().record_requested(work.session, event, at=utc_now())
    assert await rig.dispatcher.dispatch_due() == 1
    return event.payload.notification_id


async def row(rig: Rig, notification_id: str) -> Any:
    async with rig.runtime.sessions() as session:
        query = sa.select(deliveries).where(deliveries.c.notification_id == notification_id)
        return (await session.execute(query)).one()


async def events(rig: Rig, settings: Settings, event_type: str) -> list[Any]:
    return await stream_events(rig.js, settings, event_type)


async def test_the_providers_delivered_status_makes_the_sms_delivered_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(settings) as r:
        notification_id = await request(r, channel="sms", address="+44 7700 900321")
        [delivered] = await eventually(lambda: events(r, settings, "notification.delivered"), what="delivered")
        recorded = await row(r, notification_id)
        [message] = r.provider.state.messages
        # The provider says it again: nothing changes, nothing is published twice.
        form = {"MessageSid": message["sid"], "MessageStatus": "delivered", "AccountSid": SID}
        again = await post_status(r, notification_id, form)
        assert again.status_code == 204
        assert len(await events(r, settings, "notification.delivered")) == 1
    assert (recorded.status, recorded.receipt, recorded.provider_message_id) == (
        "delivered",
        "delivered",
        message["sid"],
    )
    assert delivered.payload.notification_id == notification_id and delivered.payload.channel == "sms"
    assert delivered.payload.receipt == "delivered"
    assert [status for status, _ in r.provider.state.callbacks][-1] == "delivered"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert notification_id in logged  # the work was logged, by id ...
    for personal in ("7700 900321", "+447700900321", "7700900321", PERSON.name):
        assert personal not in logged  # ... never by the number the provider posted back, nor a name


async def test_an_undelivered_sms_is_a_permanent_failure_so_routing_moves_on(settings: Settings) -> None:
    async with rig(settings) as r:
        notification_id = await request(r, channel="sms", address=f"{UNDELIVERED_PREFIX}234")
        [failed] = await eventually(lambda: events(r, settings, "notification.failed"), what="failed")
        assert await events(r, settings, "notification.delivered") == []
        recorded = await row(r, notification_id)
    assert (
        failed.payload.retryable is False and failed.payload.reason == "SMS provider reported undelivered (error 30003)"
    )
    assert (recorded.status, recorded.receipt) == ("failed", "undelivered")


async def post_status(r: Rig, notification_id: str, form: dict[str, str], *, signature: str | None = None) -> Any:
    url = f"{r.callback_url}?n={notification_id}"
    signed = provider_signature(url, form.items(), auth_token=TOKEN) if signature is None else signature
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=form, headers={"X-Twilio-Signature": signed})


async def test_a_status_callback_must_be_signed_by_the_provider_and_name_a_known_message(settings: Settings) -> None:
    async with rig(settings) as r:
        notification_id = await request(r, channel="sms", address="+44 7700 900322")
        await eventually(lambda: events(r, settings, "notification.delivered"), what="delivered")
        [message] = r.provider.state.messages
        form = {"MessageSid": message["sid"], "MessageStatus": "undelivered", "AccountSid": SID}
        forged = await post_status(r, notification_id, form, signature="bm90IHRoZSBwcm92aWRlcg==")
        other_token = provider_signature(f"{r.callback_url}?n={notification_id}", form.items(), auth_token="guess")
        wrong_key = await post_status(r, notification_id, form, signature=other_token)
        unknown_id = await post_status(r, "no-such-notification", form)
        other_message = await post_status(r, notification_id, form | {"MessageSid": "SM-someone-else"})
        assert await events(r, settings, "notification.failed") == []
        still = await row(r, notification_id)
    assert (forged.status_code, wrong_key.status_code) == (403, 403)
    assert (unknown_id.status_code, other_message.status_code) == (404, 404)
    assert still.status == "delivered"


async def test_the_service_worker_showing_a_push_makes_it_delivered(settings: Settings) -> None:
    push = ShownPush()
    async with rig(settings, push) as r:
        notification_id = await request(r, channel="push", address=PERSON.person_id)
        [shown] = push.sent
        receipt_url, token = shown.message.receipt_url, shown.message.receipt_token
        async with httpx.AsyncClient() as http:
            forged = await http.post(receipt_url, json={"notification_id": notification_id, "token": "x" * 22})
            first = await http.post(receipt_url, json={"notification_id": notification_id, "token": token})
            again = await http.post(receipt_url, json={"notification_id": notification_id, "token": token})
            # The console's worker, on another origin, sends the same JSON as text/plain (no CORS preflight).
            plain = await http.post(
                receipt_url,
                content=json.dumps({"notification_id": notification_id, "token": token}),
                headers={"Content-Type": "text/plain"},
            )
            malformed = await http.post(receipt_url, content=b"not json", headers={"Content-Type": "text/plain"})
        [delivered] = await eventually(lambda: events(r, settings, "notification.delivered"), what="delivered")
        recorded = await row(r, notification_id)
    assert (forged.status_code, first.status_code, again.status_code, plain.status_code) == (403, 204, 204, 204)
    assert malformed.status_code == 422
    assert token == SIGNER.receipt_token(notification_id) and receipt_url.endswith("/api/v1/push/receipts")
    assert (recorded.status, recorded.receipt) == ("delivered", "shown")
    assert delivered.payload.receipt == "shown" and delivered.payload.channel == "push"
