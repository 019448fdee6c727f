"""Each service's subscribers, checked in memory with faststream's TestNatsBroker: no NATS, no PostgreSQL.

Every durable consumer listens on its event's subject under its durable name with the event class as its payload,
and an event published to that subject reaches the service's handler (through the dead-letter middleware, the typed
batch subscriber and the unit of work, here an in-memory one).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from shared.contracts.envelope import Event
from shared.contracts.events import (
    ConcernReceived,
    IntakeQuarantined,
    NotificationAcknowledged,
    NotificationFailed,
    NotificationRequested,
    OpsDeadLettered,
    PersonRef,
)
from shared.contracts.record_events import RecordViewed
from shared.settings import Settings
from shared.subjects import (
    AUDIT_LEDGER,
    CONSOLE_READ_MODEL,
    NOTIFICATIONS_REQUESTS,
    ROUTING_ACKNOWLEDGEMENTS,
    ROUTING_BREAK_GLASS,
    ROUTING_CONCERNS,
    ROUTING_DEAD_LETTERS,
    ROUTING_FAILURES,
    ROUTING_QUARANTINES,
    Subjects,
)
from tests.support.factories import concern_received, notification_requested
from tests.support.fakes import InMemoryUnitOfWork
from tests.unit.routing.conftest import REPO

SETTINGS = Settings(
    subject_root="sgwiring",
    stream_name="SGWIRING",
    policy_dir=str(REPO / "deploy" / "policies"),
    nats_url="nats://127.0.0.1:9",  # never dialled: TestNatsBroker keeps everything in memory
    signing_key="wiring-test-key",
)
SUBJECTS = Subjects.from_settings(SETTINGS)


def consumers(broker: NatsBroker) -> dict[str, tuple[str, Any]]:
    """durable name -> (subject, payload type) of each JetStream consumer on the broker."""
    found = {}
    for subscriber in typing.cast(list[Any], broker.subscribers):  # NATS subscribers carry subject and config
        durable = subscriber.config.durable_name if subscriber.config else None
        if durable:
            hints = typing.get_type_hints(subscriber.calls[0].handler._original_call)
            found[durable] = (subscriber.subject.broker_address, hints["events"])
    return found


class Recorder:
    """A handler that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[Event[Any]] = []

    async def __call__(self, event: Any, *, work: Any, **_: Any) -> list[Event[Any]]:
        given = event if isinstance(event, list) else [event]
        if (claim := work.take_claim()) is not None:  # as a handler's statement claiming its batch: skip the claimed
            fresh = await work.claim(claim.consumer, claim.event_ids)
            given = [e for e in given if e.event_id in fresh]
        self.seen.extend(given)
        return []


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.runtime.UnitOfWork", InMemoryUnitOfWork)


def routing(monkeypatch: pytest.MonkeyPatch) -> tuple[NatsBroker, dict[str, Recorder]]:
    from services.routing import app

    recorders = {name: Recorder() for name in ("on_concerns_received", "on_notification_acknowledged")}
    for name, recorder in recorders.items():
        monkeypatch.setattr(app, name, recorder)
    service = app.RoutingService(SETTINGS)
    # Routing admits events only for schools whose policy it adopted (at start, from the database: not here).
    service.runtime.admission.known_school = lambda school_id: True
    return service.runtime.broker, recorders


def notifications(monkeypatch: pytest.MonkeyPatch) -> tuple[NatsBroker, dict[str, Recorder]]:
    from services.notifications import app

    recorder = Recorder()
    monkeypatch.setattr(app, "on_notifications_requested", recorder)
    return app.create_app(SETTINGS)[1].broker, {"on_notifications_requested": recorder}


def audit(monkeypatch: pytest.MonkeyPatch) -> tuple[NatsBroker, dict[str, Recorder]]:
    from services.audit import app
    from services.audit.settings import AuditSettings

    recorder = Recorder()
    monkeypatch.setattr(app, "on_events", recorder)
    return app.AuditService(SETTINGS, AuditSettings()).runtime.broker, {"on_events": recorder}


def test_each_consumer_listens_on_its_subject_under_its_durable_name_with_its_event_as_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every = f"{SUBJECTS.root}.>"
    assert consumers(routing(monkeypatch)[0]) == {
        ROUTING_CONCERNS: (SUBJECTS.of_type(ConcernReceived.TYPE), list[ConcernReceived]),
        ROUTING_ACKNOWLEDGEMENTS: (SUBJECTS.of_type(NotificationAcknowledged.TYPE), list[NotificationAcknowledged]),
        ROUTING_FAILURES: (SUBJECTS.of_type(NotificationFailed.TYPE), list[NotificationFailed]),
        ROUTING_DEAD_LETTERS: (SUBJECTS.of_type(OpsDeadLettered.TYPE), list[OpsDeadLettered]),
        ROUTING_QUARANTINES: (SUBJECTS.of_type(IntakeQuarantined.TYPE), list[IntakeQuarantined]),
        ROUTING_BREAK_GLASS: (SUBJECTS.of_type(RecordViewed.TYPE), list[RecordViewed]),
    }
    assert consumers(notifications(monkeypatch)[0]) == {
        NOTIFICATIONS_REQUESTS: (SUBJECTS.of_type(NotificationRequested.TYPE), list[NotificationRequested]),
    }
    [(subject, _)] = consumers(audit(monkeypatch)[0]).values()
    assert list(consumers(audit(monkeypatch)[0])) == [AUDIT_LEDGER] and subject == every


LEAD = PersonRef(person_id="p-lead", name="Mx Example Lead", role="designated_safeguarding_lead")
LEAD_REQUEST = {"channel": "email", "address": "lead@example.org"}


@pytest.mark.parametrize(
    ("service", "handler", "event"),
    [
        (routing, "on_concerns_received", concern_received),
        (notifications, "on_notifications_requested", lambda: notification_requested(**LEAD_REQUEST, recipient=LEAD)),
        (audit, "on_events", concern_received),
    ],
    ids=["routing", "notifications", "audit"],
)
async def test_a_published_event_reaches_its_handler_once(
    monkeypatch: pytest.MonkeyPatch,
    service: Callable[[pytest.MonkeyPatch], tuple[NatsBroker, dict[str, Recorder]]],
    handler: str,
    event: Callable[[], Event[Any]],
) -> None:
    broker, recorders = service(monkeypatch)
    published = event()
    subject = SUBJECTS.event(school_id=published.school_id, event_type=published.type)
    async with TestNatsBroker(broker) as test_broker:
        for _ in range(2):  # the second delivery is a duplicate: the inbox claim skips it
            await test_broker.publish(published.to_json(), subject, stream=SETTINGS.stream_name)
    assert [e.event_id for e in recorders[handler].seen] == [published.event_id]


def test_the_consoles_read_model_waits_longer_than_a_hop_to_fill_its_batches() -> None:
    from services.console.app import create_app
    from services.console.settings import ConsoleSettings

    console = ConsoleSettings(projection_window_seconds=0.2, projection_batch_size=200)
    [read_model] = typing.cast(list[Any], create_app(SETTINGS, console=console)[1].broker.subscribers)
    hop = SETTINGS.batch_window_seconds
    assert (
        read_model.config.durable_name == CONSOLE_READ_MODEL
        and read_model.subject.broker_address == f"{SUBJECTS.root}.>"
    )
    assert read_model.pull_sub.timeout == 0.2 > hop  # the long poll's window is the same (shared/long_poll.py)
    assert read_model.pull_sub.batch_size == 200
