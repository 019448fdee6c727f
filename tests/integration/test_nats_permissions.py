"""Each service's NATS identity can do its own job and nothing else (private nats-server, rendered config)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from shared.identities import ADMIN, PullConsumer, consumers
from shared.subjects import (
    AUDIT_LEDGER,
    INTAKE_RECEIPTS,
    NOTIFICATIONS_REQUESTS,
    ROUTING_ACKNOWLEDGEMENTS,
    ROUTING_BREAK_GLASS,
    ROUTING_CONCERNS,
    ROUTING_DEAD_LETTERS,
    ROUTING_FAILURES,
    ROUTING_QUARANTINES,
)
from tests.support.secured_bus import Bus

DENIED_WITHIN = 0.5  # a refused request gets no answer; this is how long we give it


def _event(bus: Bus, event_type: str) -> tuple[str, bytes]:
    subject = bus.subjects.event(school_id="st-marks", event_type=event_type)
    return subject, json.dumps({"type": event_type, "event_id": uuid.uuid4().hex}).encode()


async def _publish(client: Client, bus: Bus, event_type: str) -> int:
    subject, body = _event(bus, event_type)
    ack = await client.jetstream().publish(subject, body, stream=bus.subjects.stream, timeout=DENIED_WITHIN)
    return ack.seq


async def test_an_unauthenticated_connection_is_refused(bus: Bus) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(bus.server.url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)


async def test_a_wrong_password_is_refused(bus: Bus) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(
            bus.server.url, user="intake", password="guessed", allow_reconnect=False, max_reconnect_attempts=0
        )


@pytest.mark.parametrize(
    ("service", "forged"),
    [
        ("intake", "notification.acknowledged"),
        ("intake", "case.opened"),
        ("routing", "concern.received"),
        ("routing", "notification.acknowledged"),
        ("notifications", "notification.requested"),
        ("notifications", "case.acknowledged"),
        ("audit", "concern.received"),
    ],
)
async def test_a_service_cannot_publish_another_services_events(bus: Bus, service: str, forged: str) -> None:
    client = await bus.connect(service)
    with pytest.raises(nats.errors.TimeoutError):
        await _publish(client, bus, forged)
    assert await bus.violations(service, containing=forged)
    assert not any(subject.endswith(forged) for subject in await bus.stored_subjects())


@pytest.mark.parametrize("service", ["intake", "routing", "notifications", "audit"])
async def test_no_service_can_delete_or_purge_the_streams_or_anothers_consumer(bus: Bus, service: str) -> None:
    admin = (await bus.connect(ADMIN)).jetstream()
    await admin.add_consumer(
        bus.subjects.stream,
        ConsumerConfig(durable_name=ROUTING_CONCERNS, filter_subject=bus.subjects.of_type("concern.received")),
    )
    js = (await bus.connect(service)).jetstream(timeout=DENIED_WITHIN)
    for stream in (bus.subjects.stream, bus.subjects.dead_letter_stream, bus.subjects.checkpoint_stream):
        with pytest.raises(nats.errors.TimeoutError):
            await js.delete_stream(stream)
        with pytest.raises(nats.errors.TimeoutError):
            await js.purge_stream(stream)
    with pytest.raises(nats.errors.TimeoutError):
        await js.delete_consumer(bus.subjects.stream, ROUTING_CONCERNS)
    with pytest.raises(nats.errors.TimeoutError):
        await js.update_stream(name=bus.subjects.stream, subjects=[bus.subjects.all_events], max_age=1.0)
    assert await bus.violations(service, containing="STREAM.DELETE")
    assert (await admin.stream_info(bus.subjects.stream)).config.max_age in (None, 0, 0.0)
    assert (await admin.consumer_info(bus.subjects.stream, ROUTING_CONCERNS)).name == ROUTING_CONCERNS


async def test_notifications_cannot_read_concerns_off_the_bus_or_the_stream(bus: Bus) -> None:
    notifications = await bus.connect("notifications")
    overheard: list[str] = []

    async def listen(message: Msg) -> None:
        overheard.append(message.subject)

    await notifications.subscribe(bus.subjects.of_type("concern.received"), cb=listen)
    await notifications.subscribe("_INBOX.>", cb=listen)
    assert await bus.violations("notifications", containing="concern.received")
    js = notifications.jetstream(timeout=DENIED_WITHIN)
    for durable in (NOTIFICATIONS_REQUESTS, "notifications-snoop"):
        with pytest.raises(nats.errors.TimeoutError):
            await js.pull_subscribe(bus.subjects.of_type("concern.received"), durable, stream=bus.subjects.stream)
    with pytest.raises(nats.errors.TimeoutError):
        await js.get_msg(bus.subjects.stream, seq=1)
    # A concern published and pulled by routing now reaches nobody else.
    intake = await bus.connect("intake")
    await _publish(intake, bus, "concern.received")
    routing = (await bus.connect("routing")).jetstream()
    pulled = await _pull_one(routing, bus, consumers(bus.subjects)["routing"][0])
    assert pulled.endswith("concern.received")
    await notifications.flush()
    assert overheard == []


async def _pull_one(js: nats.js.JetStreamContext, bus: Bus, consumer: PullConsumer) -> str:
    """Create (or bind) the durable pull consumer as the service does, fetch one event, acknowledge it."""
    subscription = await js.pull_subscribe(
        consumer.filter_subject,
        consumer.durable,
        stream=bus.subjects.stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=5.0),
    )
    [message] = await subscription.fetch(1, timeout=5.0)
    await message.ack_sync(timeout=5.0)
    return message.subject


JOBS: dict[str, tuple[str, ...]] = {
    "intake": ("concern.received", "intake.quarantined"),
    "routing": ("case.opened", "deadline.set", "notification.requested", "policy.adopted", "debrief.action_due"),
    "notifications": (
        "notification.sent",
        "notification.delivered",
        "notification.failed",
        "notification.acknowledged",
    ),
    "audit": ("record.viewed", "key.shredded"),  # and its checkpoints: the test below
}
# What each durable consumer is fed before its service pulls (published by the admin).
FEEDS = {
    INTAKE_RECEIPTS: "case.closed",
    ROUTING_CONCERNS: "concern.received",
    ROUTING_ACKNOWLEDGEMENTS: "notification.acknowledged",
    ROUTING_FAILURES: "notification.failed",
    ROUTING_DEAD_LETTERS: "ops.dead_lettered",
    ROUTING_QUARANTINES: "intake.quarantined",
    ROUTING_BREAK_GLASS: "record.viewed",
    NOTIFICATIONS_REQUESTS: "notification.requested",
    AUDIT_LEDGER: "case.opened",
}


@pytest.mark.parametrize("service", ["intake", "routing", "notifications", "audit"])
async def test_each_service_can_do_its_real_job(bus: Bus, service: str) -> None:
    client = await bus.connect(service)
    sequences = [await _publish(client, bus, event_type) for event_type in JOBS[service]]
    assert all(sequence > 0 for sequence in sequences)
    js = client.jetstream()
    for name in (bus.subjects.stream, bus.subjects.dead_letter_stream, bus.subjects.checkpoint_stream):
        assert (await js.stream_info(name)).config.name == name
    for consumer in consumers(bus.subjects)[service]:
        feeder = await bus.connect(ADMIN)
        await _publish(feeder, bus, FEEDS[consumer.durable])
        with contextlib.suppress(NotFoundError):
            await js.consumer_info(bus.subjects.stream, consumer.durable)
        assert await _pull_one(js, bus, consumer)
        info = await js.consumer_info(bus.subjects.stream, consumer.durable)
        assert info.num_ack_pending == 0 and info.delivered.stream_seq >= 1
        dead = await js.publish(
            bus.subjects.dead_letter(consumer.durable), b"{}", stream=bus.subjects.dead_letter_stream
        )
        assert dead.seq > 0
    await asyncio.sleep(0)
    assert not bus.errors.get(service), bus.errors.get(service)


async def test_only_audit_publishes_signed_checkpoints_on_their_own_stream(bus: Bus) -> None:
    subject = bus.subjects.checkpoint(school_id="st-marks")
    audit = (await bus.connect("audit")).jetstream()
    assert (await audit.publish(subject, b"{}", stream=bus.subjects.checkpoint_stream)).seq == 1
    for impostor in ("intake", "routing", "notifications"):
        js = (await bus.connect(impostor)).jetstream()
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish(subject, b"{}", stream=bus.subjects.checkpoint_stream, timeout=DENIED_WITHIN)
        assert await bus.violations(impostor, containing="ledger.checkpointed")


async def test_routing_answers_case_commands_and_the_operator_may_ask(bus: Bus) -> None:
    routing = await bus.connect("routing")

    async def answer(message: Msg) -> None:
        await message.respond(b'{"ok": true}')

    await routing.subscribe(bus.subjects.command("routing", "case"), queue="routing", cb=answer)
    await routing.flush()
    operator = await bus.connect("operator")
    reply = await operator.request(bus.subjects.command("routing", "case"), b"{}", timeout=5.0)
    assert json.loads(reply.data) == {"ok": True}
    intake = await bus.connect("intake")
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await intake.request(bus.subjects.command("routing", "case"), b"{}", timeout=DENIED_WITHIN)


async def test_audit_answers_the_record_queries_and_only_the_console_may_ask(bus: Bus) -> None:
    audit = await bus.connect("audit")

    async def answer(message: Msg) -> None:
        await message.respond(b'{"ok": true}')

    for subject in (bus.subjects.audit_query, bus.subjects.audit_export):
        await audit.subscribe(subject, cb=answer)
    await audit.flush()
    console = await bus.connect("console")
    for subject in (bus.subjects.audit_query, bus.subjects.audit_export):
        reply = await console.request(subject, b"{}", timeout=5.0)
        assert json.loads(reply.data) == {"ok": True}
    for impostor in ("intake", "routing", "notifications", "operator"):
        client = await bus.connect(impostor)
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await client.request(bus.subjects.audit_query, b"{}", timeout=DENIED_WITHIN)
        assert await bus.violations(impostor, containing=bus.subjects.audit_query)
    # Nobody but audit may listen for the queries (and what they carry).
    routing = await bus.connect("routing")
    await routing.subscribe(bus.subjects.command("audit", ">"))
    assert await bus.violations("routing", containing=bus.subjects.command("audit", ">"))


async def test_notifications_answers_push_requests_and_only_the_console_may_ask(bus: Bus) -> None:
    notifications = await bus.connect("notifications")

    async def answer(message: Msg) -> None:
        await message.respond(b'{"ok": true}')

    await notifications.subscribe(bus.subjects.notifications_push, queue="notifications-push", cb=answer)
    await notifications.flush()
    console = await bus.connect("console")
    reply = await console.request(bus.subjects.notifications_push, b"{}", timeout=5.0)
    assert json.loads(reply.data) == {"ok": True}
    for impostor in ("intake", "routing", "audit", "operator"):
        client = await bus.connect(impostor)
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await client.request(bus.subjects.notifications_push, b"{}", timeout=DENIED_WITHIN)
        assert await bus.violations(impostor, containing=bus.subjects.notifications_push)
    # Nobody but notifications may listen for the requests (and the subscriptions they carry).
    routing = await bus.connect("routing")
    await routing.subscribe(bus.subjects.command("notifications", ">"))
    assert await bus.violations("routing", containing=bus.subjects.command("notifications", ">"))
    # Notifications may not send commands anywhere, nor ask audit for the record.
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await notifications.request(bus.subjects.audit_query, b"{}", timeout=DENIED_WITHIN)
    assert await bus.violations("notifications", containing=bus.subjects.audit_query)
