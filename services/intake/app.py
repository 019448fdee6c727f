"""Intake service wiring: FastAPI for the web channels, the runtime for the outbox and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.intake.channels import include_channels
from services.intake.handlers import Intake
from services.intake.http import IntakeApp
from services.intake.openapi import publish_contract
from services.intake.receipts import READS, on_case_events, only_links
from services.intake.smtp import own_domains, smtp_listener
from services.intake.store import SCHEMA, SqlIntakeStore
from services.intake.sweeper import Sweeper, channel_parsers
from shared.background import PollingLoop
from shared.collector import settle_collector
from shared.contracts.envelope import Event, utc_now
from shared.contracts.events import ConcernReceived, IntakeQuarantined
from shared.runtime import WIDE_POOL, ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import INTAKE_RECEIPTS
from shared.tracing import shutdown_tracing


def create_app(settings: Settings) -> tuple[IntakeApp, ServiceRuntime]:
    """Build the intake HTTP app for these settings."""
    runtime = ServiceRuntime(settings, service="intake", schema=SCHEMA, pool=WIDE_POOL)
    runtime.publishes(ConcernReceived, IntakeQuarantined)
    intake = Intake(uow=runtime.uow, store=SqlIntakeStore(), clock=utc_now)
    sweeper = Sweeper(
        intake=intake,
        parsers=channel_parsers(own_domains=own_domains(settings)),
        stuck_after=timedelta(seconds=settings.intake_stuck_after_seconds),
    )
    sweeping = PollingLoop(sweeper.sweep, name="intake sweeper", poll_seconds=settings.intake_sweep_seconds)
    # Receipts follow the case events that move a stage (case.opened links a case to its reference) for the status
    # page. The durable's one filter covers every case event; the others (case.triaged, the largest, one a concern)
    # are acked at the edge unread.
    runtime.consumer(
        Event,
        durable=INTAKE_RECEIPTS,
        batch_handler=on_case_events,
        filter_subject=runtime.subjects.of_type("case.*"),
        handles=READS,
        claims_in_statement=only_links,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await runtime.broker.start()
        sweeping.start()
        try:
            async with smtp_listener(intake, settings=settings):
                yield
        finally:
            await sweeping.stop()
            await runtime.broker.stop()
            await runtime.stop()

    app = IntakeApp(
        title="Safeguard intake",
        version="1",
        description="Report a safeguarding concern. Every input is stored before it is parsed.",
        lifespan=lifespan,
    )
    app.shortcut = include_channels(app, intake=intake, settings=settings)
    publish_contract(app)
    app.state.sweeper = sweeper
    return app, runtime


def main() -> None:
    import uvicorn

    settings = get_settings()
    app, _ = create_app(settings)
    settle_collector()
    try:
        uvicorn.run(app, host=settings.intake_http_host, port=settings.intake_http_port, log_level="warning")
    finally:
        shutdown_tracing()  # export the spans still queued
