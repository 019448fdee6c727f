"""Intake service wiring: FastAPI for the web channels, the runtime for the outbox and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake.handlers import Intake
from services.intake.http import router
from services.intake.store import SCHEMA, SqlIntakeStore
from shared.contracts.envelope import utc_now
from shared.contracts.events import ConcernReceived
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.tracing import shutdown_tracing


def known_schools(policy_dir: str) -> frozenset[str]:
    """Schools this deployment serves: one policy file `<school_id>.yaml` each."""
    return frozenset(path.stem for path in Path(policy_dir).glob("*.yaml"))


def create_app(settings: Settings) -> tuple[FastAPI, ServiceRuntime]:
    """Build the intake HTTP app for these settings."""
    runtime = ServiceRuntime(settings, service="intake", schema=SCHEMA)
    runtime.publishes(ConcernReceived)
    intake = Intake(uow=runtime.uow, store=SqlIntakeStore(), clock=utc_now)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.broker.stop()
            await runtime.stop()

    app = FastAPI(
        title="Safeguard intake",
        version="1",
        description="Report a safeguarding concern. Every input is stored before it is parsed.",
        lifespan=lifespan,
    )
    app.include_router(router(intake=intake, known_schools=known_schools(settings.policy_dir)))
    return app, runtime


def main() -> None:
    import uvicorn

    settings = get_settings()
    app, _ = create_app(settings)
    try:
        uvicorn.run(app, host=settings.intake_http_host, port=settings.intake_http_port, log_level="warning")
    finally:
        shutdown_tracing()  # export the spans still queued
