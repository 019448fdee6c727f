"""Routing service wiring: consumers of concerns and acknowledgements, the deadline scheduler, policy adoption."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from faststream import FastStream

from services.routing.break_glass import on_record_viewed
from services.routing.case_command_edge import register_commands
from services.routing.command_auth import CommandGate
from services.routing.failure_store import SqlNotificationFailures
from services.routing.failures import on_notifications_failed
from services.routing.handlers import Routing, on_concerns_received, on_deadline_due, on_notification_acknowledged
from services.routing.operations import on_dead_lettered
from services.routing.policy_book import PolicyBook
from services.routing.policy_command import register_policy_commands
from services.routing.quarantines import on_intake_quarantined
from services.routing.store import SCHEMA, SqlCaseEvents, SqlDeadlines
from services.routing.timers import DeadlineScheduler
from shared.actor_tokens import ActorVerifier
from shared.collector import settle_collector
from shared.consumer import every_batch
from shared.contracts.case_events import CASE_WORKFLOW_EVENTS, CaseCommandRefused, DebriefActionDue
from shared.contracts.envelope import utc_now
from shared.contracts.events import (
    CaseEscalated,
    CaseOpened,
    CaseTriaged,
    CaseUnacknowledged,
    ConcernReceived,
    DeadlineReached,
    DeadlineSet,
    IntakeQuarantined,
    NotificationAcknowledged,
    NotificationFailed,
    NotificationRequested,
    OpsDeadLettered,
    PolicyAdopted,
    PolicyReviewDue,
)
from shared.contracts.record_events import RecordViewed
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import (
    ROUTING_ACKNOWLEDGEMENTS,
    ROUTING_BREAK_GLASS,
    ROUTING_CONCERNS,
    ROUTING_DEAD_LETTERS,
    ROUTING_FAILURES,
    ROUTING_QUARANTINES,
)
from shared.tracing import shutdown_tracing

log = logging.getLogger(__name__)


class RoutingService:
    """Routing's runtime plus what it adds: the policy book and the deadline scheduler."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.runtime = ServiceRuntime(settings, service="routing", schema=SCHEMA)
        self.runtime.publishes(
            PolicyAdopted,
            CaseOpened,
            CaseTriaged,
            NotificationRequested,
            DeadlineSet,
            DeadlineReached,
            CaseEscalated,
            PolicyReviewDue,
            CaseUnacknowledged,
            *CASE_WORKFLOW_EVENTS,
            CaseCommandRefused,
            DebriefActionDue,
        )
        self.routing = Routing(
            policies=PolicyBook(),
            case_events=SqlCaseEvents(),
            deadlines=SqlDeadlines(),
            clock=clock,
            alert_every=timedelta(minutes=settings.unacknowledged_alert_minutes),
            debrief_every=timedelta(hours=settings.debrief_reminder_hours),
        )
        self.runtime.admission.known_school = self.routing.policies.adopted
        triage = partial(on_concerns_received, routing=self.routing)
        triage.__doc__ = on_concerns_received.__doc__
        acknowledged = partial(on_notification_acknowledged, routing=self.routing)
        acknowledged.__doc__ = on_notification_acknowledged.__doc__
        # Triage's batch and a failure batch's first statement claim the batch themselves (see shared/consumer.py).
        claiming = partial(self.runtime.consumer, traces_events=True, claims_in_statement=every_batch)
        claiming(ConcernReceived, durable=ROUTING_CONCERNS, batch_handler=triage)
        self.runtime.consumer(NotificationAcknowledged, durable=ROUTING_ACKNOWLEDGEMENTS, handler=acknowledged)
        verifier = ActorVerifier.from_folder(settings.actor_keys_dir)
        log.info("case commands accepted from issuers: %s", ", ".join(verifier.issuers) or "none")
        gate = CommandGate(verifier=verifier, policies=self.routing.policies)
        register_commands(self.runtime, clock=clock, gate=gate)
        register_policy_commands(
            self.runtime, gate=gate, book=self.routing.policies, deadlines=self.routing.deadlines, clock=clock
        )
        self.scheduler = DeadlineScheduler(
            uow=self.runtime.uow,
            deadlines=self.routing.deadlines,
            on_due=partial(on_deadline_due, routing=self.routing),
            clock=clock,
            poll_seconds=settings.outbox_poll_seconds,
        )
        failed = partial(
            on_notifications_failed,
            routing=self.routing,
            failures=SqlNotificationFailures(),
            wake_scheduler=self.scheduler.wake,
        )
        failed.__doc__ = on_notifications_failed.__doc__
        claiming(NotificationFailed, durable=ROUTING_FAILURES, batch_handler=failed, claim_in_transaction=True)
        dead = partial(on_dead_lettered, routing=self.routing)
        dead.__doc__ = on_dead_lettered.__doc__
        self.runtime.consumer(OpsDeadLettered, durable=ROUTING_DEAD_LETTERS, handler=dead)
        quarantined = partial(on_intake_quarantined, routing=self.routing)
        quarantined.__doc__ = on_intake_quarantined.__doc__
        self.runtime.consumer(IntakeQuarantined, durable=ROUTING_QUARANTINES, handler=quarantined)
        viewed = partial(on_record_viewed, routing=self.routing)
        viewed.__doc__ = on_record_viewed.__doc__
        self.runtime.consumer(RecordViewed, durable=ROUTING_BREAK_GLASS, handler=viewed)

    async def start(self) -> None:
        """Migrate and connect, adopt the policy folder, then start the scheduler (subscribers start after)."""
        await self.runtime.start()
        async with self.runtime.uow.begin() as work:
            work.emit(
                await self.routing.policies.adopt_folder(
                    self.runtime.settings.policy_dir,
                    session=work.session,
                    deadlines=self.routing.deadlines,
                    now=self.routing.clock(),
                )
            )
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.runtime.stop()


def create_app(settings: Settings) -> tuple[FastStream, RoutingService]:
    """Build the routing app for these settings."""
    service = RoutingService(settings)
    app = FastStream(service.runtime.broker, on_startup=[service.start], after_shutdown=[service.stop])
    return app, service


def main() -> None:
    import asyncio

    app, _ = create_app(get_settings())
    settle_collector()
    try:
        asyncio.run(app.run())
    finally:
        shutdown_tracing()  # export the spans still queued
