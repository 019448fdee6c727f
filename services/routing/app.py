"""Routing service wiring: consumers of concerns and acknowledgements, the deadline scheduler, policy adoption."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from faststream import FastStream

from services.routing.commands import register_commands
from services.routing.handlers import Routing, on_concern_received, on_deadline_due, on_notification_acknowledged
from services.routing.policies import PolicyBook
from services.routing.store import SCHEMA, SqlCaseEvents, SqlDeadlines
from services.routing.timers import DeadlineScheduler
from shared.contracts.case_events import CASE_WORKFLOW_EVENTS
from shared.contracts.envelope import utc_now
from shared.contracts.events import (
    CaseEscalated,
    CaseOpened,
    CaseTriaged,
    DeadlineReached,
    DeadlineSet,
    NotificationRequested,
    PolicyAdopted,
    PolicyReviewDue,
)
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import ROUTING_ACKNOWLEDGEMENTS, ROUTING_CONCERNS


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
            *CASE_WORKFLOW_EVENTS,
        )
        self.routing = Routing(
            policies=PolicyBook(), case_events=SqlCaseEvents(), deadlines=SqlDeadlines(), clock=clock
        )
        triage = partial(on_concern_received, routing=self.routing)
        triage.__doc__ = on_concern_received.__doc__
        acknowledged = partial(on_notification_acknowledged, routing=self.routing)
        acknowledged.__doc__ = on_notification_acknowledged.__doc__
        self.runtime.consumer(
            triage, durable=ROUTING_CONCERNS, filter_subject=self.runtime.subjects.of_type("concern.received")
        )
        self.runtime.consumer(
            acknowledged,
            durable=ROUTING_ACKNOWLEDGEMENTS,
            filter_subject=self.runtime.subjects.of_type("notification.acknowledged"),
        )
        register_commands(self.runtime, clock=clock)
        self.scheduler = DeadlineScheduler(
            sessions=self.runtime.sessions,
            tables=self.runtime.tables,
            deadlines=self.routing.deadlines,
            on_due=partial(on_deadline_due, routing=self.routing),
            clock=clock,
            after_fire=self.runtime.relay.wake,
            poll_seconds=settings.outbox_poll_seconds,
        )

    async def start(self) -> None:
        """Migrate and connect, adopt the policy folder, then start the scheduler (subscribers start after)."""
        await self.runtime.start()
        async with transaction(self.runtime.sessions) as session:
            events = await self.routing.policies.adopt_folder(
                self.runtime.settings.policy_dir,
                session=session,
                deadlines=self.routing.deadlines,
                now=self.routing.clock(),
            )
            await self.runtime.tables.enqueue(session, events)
        self.runtime.relay.wake()
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
    asyncio.run(app.run())
