"""Notifications' and audit's handlers over the in-memory fakes, with a channel that only records what it was given."""

from __future__ import annotations

from datetime import UTC, datetime

from services.audit.domain import verify_chain
from services.audit.handlers import on_events
from services.notifications.channels import Delivery, DeliveryFailed
from services.notifications.handlers import Notifier, acknowledge, on_notification_requested
from services.notifications.links import AckLinks
from shared.contracts.events import PersonRef
from tests.support.factories import concern_received, notification_requested
from tests.support.fakes import FakeDeliveries, FakeLedger, fake_work

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LEAD = PersonRef(person_id="p-lead", name="Mx Example Lead", role="designated_safeguarding_lead")


class RecordingChannel:
    """A channel that keeps each delivery instead of sending it (or refuses, when told to)."""

    def __init__(self, name: str, *, refuse: str | None = None) -> None:
        self.name = name
        self.sent: list[Delivery] = []
        self._refuse = refuse

    async def send(self, delivery: Delivery) -> str:
        if self._refuse:
            raise DeliveryFailed(self._refuse, retryable=False)
        self.sent.append(delivery)
        return f"provider-{len(self.sent)}"


def notifier(*channels: RecordingChannel) -> Notifier:
    return Notifier(
        deliveries=FakeDeliveries(),
        channels={c.name: c for c in channels},
        signer=AckLinks(key=b"k" * 32),
        console_url="https://console.example.org",
        clock=lambda: NOW,
    )


async def test_a_requested_notification_is_sent_once_with_a_lock_screen_safe_message() -> None:
    email = RecordingChannel("email")
    service = notifier(email)
    request = notification_requested(channel="email", address="lead@example.org", recipient=LEAD)
    events = await on_notification_requested(request, work=fake_work(), notifier=service)
    assert [e.type for e in events] == ["notification.sent"]
    assert await on_notification_requested(request, work=fake_work(), notifier=service) == []
    [delivery] = email.sent
    assert delivery.address == "lead@example.org" and LEAD.name not in delivery.message.body
    row = await service.deliveries.get(fake_work().session, request.payload.notification_id)
    assert row is not None and (row.status, row.detail, row.delivered_at) == ("sent", "provider-1", NOW)


async def test_a_channel_that_refuses_or_is_missing_gives_notification_failed() -> None:
    service = notifier(RecordingChannel("sms", refuse="the number was refused"))
    refused = notification_requested(channel="sms", address="+440000000000", recipient=LEAD)
    missing = notification_requested(channel="push", address="sub-1", recipient=LEAD)
    for request, reason in ((refused, "the number was refused"), (missing, "no push channel is configured")):
        [failed] = await on_notification_requested(request, work=fake_work(), notifier=service)
        assert (failed.type, failed.payload.reason) == ("notification.failed", reason)


async def test_an_acknowledgement_is_recorded_once_and_names_the_recipient() -> None:
    service = notifier(RecordingChannel("email"))
    request = notification_requested(channel="email", address="lead@example.org", recipient=LEAD)
    await on_notification_requested(request, work=fake_work(), notifier=service)
    nid, session = request.payload.notification_id, fake_work().session
    found, events = await acknowledge(nid, session=session, deliveries=service.deliveries, at=NOW)
    assert found and [(e.type, e.payload.acknowledged_by) for e in events] == [("notification.acknowledged", "p-lead")]
    assert events[0].causation_id == request.event_id
    assert await acknowledge(nid, session=session, deliveries=service.deliveries, at=NOW) == (True, [])
    assert await acknowledge("unknown", session=session, deliveries=service.deliveries, at=NOW) == (False, [])


async def test_audit_puts_a_batch_on_each_schools_chain_in_order() -> None:
    ledger = FakeLedger()
    batch = [concern_received(school_id="st-marks"), concern_received(school_id="oak-hill"), concern_received()]
    await on_events(batch, work=fake_work(), ledger=ledger, stream_sequences={})
    chain = await ledger.chain(fake_work().session, school_id="st-marks")
    assert [e.event["event_id"] for e in chain] == [str(batch[0].event_id), str(batch[2].event_id)]
    assert verify_chain(chain) == []
