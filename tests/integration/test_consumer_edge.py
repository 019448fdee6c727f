"""The consumer edge refuses what cannot be true: parked with its reason, never acted on, never in a chain.

On the open test NATS anybody may publish anything, so these are the checks that remain when a publisher
got onto a subject it should not have: routing, notifications and audit run side by side and each must park
the forged event, while a genuine event published after it is processed as usual (so "nothing happened" is
observed after the consumers have moved past the forgery, not merely before they got to it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import nats.errors
import pytest
import sqlalchemy as sa

from services.audit.app import create_app as create_audit
from services.audit.store import ledger
from services.notifications.app import create_app as create_notifications
from services.notifications.store import deliveries
from services.routing.app import RoutingService
from services.routing.store import cases
from shared.contracts.events import PersonRef
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import AUDIT_LEDGER, NOTIFICATIONS_REQUESTS, ROUTING_CONCERNS
from tests.support.factories import concern_received, notification_requested
from tests.support.running import jetstream, publish_raw, running
from tests.support.secured_bus import Bus
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DSL = PersonRef(person_id="dsl-1", name="Test Lead", role="designated_safeguarding_lead")


@asynccontextmanager
async def three_services(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    """Routing (with its adopted policies), notifications and audit, consuming this test's stream."""
    routing = RoutingService(settings)
    _, notifications = create_notifications(settings)
    _, audit = create_audit(settings)
    await routing.start()
    await routing.runtime.broker.start()
    try:
        async with running(notifications), running(audit):
            yield routing.runtime
    finally:
        await routing.runtime.broker.stop()
        await routing.stop()


async def parked(settings: Settings) -> list[tuple[str, str, str]]:
    """(consumer subject, original subject, reason) of every dead letter so far."""
    client = await nats.connect(settings.nats_url)
    try:
        subscription = await client.jetstream().pull_subscribe(
            f"{settings.subject_root}-dead.>", stream=f"{settings.stream_name}_DEAD"
        )
        try:
            messages = await subscription.fetch(50, timeout=0.5)
        except nats.errors.TimeoutError:
            return []
        headers = [(m.subject, m.headers or {}) for m in messages]
        return [(s, h["Safeguard-Original-Subject"], h["Safeguard-Reason"]) for s, h in headers]
    finally:
        await client.close()


async def rows(runtime: ServiceRuntime, query: Any) -> list[Any]:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(query)).all())


def dead(settings: Settings, consumer: str) -> str:
    return f"{settings.subject_root}-dead.{consumer}"


async def test_an_event_whose_subject_names_another_school_is_parked_and_changes_nothing(settings: Settings) -> None:
    forged_concern = concern_received(school_id="st-marks")
    forged_request = notification_requested(channel="log", address="log", recipient=DSL)
    genuine = concern_received(school_id="st-marks")
    oak = "oak-academy"
    async with three_services(settings) as runtime, jetstream(settings) as (_, js):
        for event in (forged_concern, forged_request):
            body = event.to_json()
            subject = f"{settings.subject_root}.{oak}.{event.type}"
            await js.publish(subject, body, headers={"Nats-Msg-Id": str(event.event_id)})
        await publish_raw(js, settings, genuine)
        letters = await eventually(
            lambda: parked(settings), until=lambda found: len(found) == 4, what="four dead letters"
        )
        await eventually(
            lambda: rows(runtime, sa.select(ledger.c.event_id).where(ledger.c.event_id == genuine.event_id)),
            what="the genuine concern in the ledger",
        )
        await eventually(
            lambda: rows(runtime, sa.select(cases).where(cases.c.reference == genuine.payload.reference)),
            what="the genuine concern's case",
        )
        forged_ids = [forged_concern.event_id, forged_request.event_id]
        in_ledger = await rows(runtime, sa.select(ledger.c.event_id).where(ledger.c.event_id.in_(forged_ids)))
        forged_case = await rows(runtime, sa.select(cases).where(cases.c.reference == forged_concern.payload.reference))
        sent = await rows(
            runtime,
            sa.select(deliveries).where(deliveries.c.notification_id == forged_request.payload.notification_id),
        )
    reason = "the subject names school oak-academy but the event names school st-marks"
    assert sorted(letters) == sorted(
        [
            (dead(settings, ROUTING_CONCERNS), f"{settings.subject_root}.{oak}.concern.received", reason),
            (dead(settings, AUDIT_LEDGER), f"{settings.subject_root}.{oak}.concern.received", reason),
            (dead(settings, NOTIFICATIONS_REQUESTS), f"{settings.subject_root}.{oak}.notification.requested", reason),
            (dead(settings, AUDIT_LEDGER), f"{settings.subject_root}.{oak}.notification.requested", reason),
        ]
    )
    assert in_ledger == [] and forged_case == [] and sent == []


async def test_an_event_of_an_unknown_school_or_on_another_types_subject_is_parked(settings: Settings) -> None:
    unknown = concern_received(school_id="no-such-school")
    misfiled = notification_requested(channel="log", address="log", recipient=DSL)
    genuine = concern_received()
    async with three_services(settings) as runtime, jetstream(settings) as (_, js):
        await publish_raw(js, settings, unknown)
        # A notification request filed under concern.received: routing must not triage it, audit not record it.
        await js.publish(
            f"{settings.subject_root}.st-marks.concern.received",
            misfiled.to_json(),
            headers={"Nats-Msg-Id": str(misfiled.event_id)},
        )
        await publish_raw(js, settings, genuine)
        letters = await eventually(
            lambda: parked(settings), until=lambda found: len(found) == 4, what="four dead letters"
        )
        await eventually(
            lambda: rows(runtime, sa.select(ledger.c.event_id).where(ledger.c.event_id == genuine.event_id)),
            what="the genuine concern in the ledger",
        )
        chains = await rows(runtime, sa.select(ledger.c.school_id).distinct())
        no_case = await rows(runtime, sa.select(cases).where(cases.c.school_id == "no-such-school"))
        sent = await rows(
            runtime, sa.select(deliveries).where(deliveries.c.notification_id == misfiled.payload.notification_id)
        )
    reasons = sorted((subject.rsplit(".", 1)[1], reason) for subject, _, reason in letters)
    no_policy = "school no-such-school has no adopted policy"
    wrong_type = "the subject carries concern.received but the event is notification.requested"
    assert reasons == sorted(
        [
            (AUDIT_LEDGER, no_policy),
            (ROUTING_CONCERNS, no_policy),
            (AUDIT_LEDGER, wrong_type),
            (ROUTING_CONCERNS, wrong_type),
        ]
    )
    assert chains == [("st-marks",)] and no_case == [] and sent == []


@pytest.mark.parametrize("identity", ["routing", "notifications", "audit", "operator"])
async def test_a_forged_concern_is_refused_at_publish_for_anyone_but_intake(bus: Bus, identity: str) -> None:
    # On a secured bus the forgery never reaches a consumer: only intake (which stored the raw input) may say it.
    forged = concern_received()
    client = await bus.connect(identity)
    subject = bus.subjects.event(school_id="st-marks", event_type="concern.received")
    with pytest.raises(nats.errors.TimeoutError):
        await client.jetstream().publish(subject, forged.to_json(), stream=bus.subjects.stream, timeout=0.5)
    assert await bus.violations(identity, containing="concern.received")
    assert subject not in await bus.stored_subjects()
