"""Intake service wiring: FastAPI for the web channels, the runtime for the outbox and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake import email_http, webhook_http
from services.intake.email_in import email_parser
from services.intake.gate import build_gate
from services.intake.handlers import Intake
from services.intake.http import router
from services.intake.openapi import publish_contract
from services.intake.smtp import mailboxes, own_domains, smtp_listener
from services.intake.store import SCHEMA, SqlIntakeStore
from services.intake.webhook_http import load_sources
from shared.contracts.envelope import utc_now
from shared.contracts.events import ConcernReceived
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings


def known_schools(policy_dir: str) -> frozenset[str]:
    """Schools this deployment serves: one policy file `<school_id>.yaml` each."""
    return frozenset(path.stem for path in Path(policy_dir).glob("*.yaml"))


def create_app(settings: Settings) -> tuple[FastAPI, ServiceRuntime]:
    """Build the intake HTTP app for these settings."""
    runtime = ServiceRuntime(settings, service="intake", schema=SCHEMA)
    runtime.publishes(ConcernReceived)
    intake = Intake(
        sessions=runtime.sessions,
        tables=runtime.tables,
        store=SqlIntakeStore(),
        clock=utc_now,
        on_accepted=runtime.relay.wake,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            async with smtp_listener(intake, settings=settings):
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
    gate = build_gate(intake, settings=settings)
    app.include_router(router(gate=gate, known_schools=known_schools(settings.policy_dir)))
    app.include_router(
        email_http.router(
            gate=gate, addresses=mailboxes(settings), parse=email_parser(own_domains=own_domains(settings))
        )
    )
    app.include_router(
        webhook_http.router(
            gate=gate,
            sources=load_sources(settings),
            sessions=runtime.sessions,
            tolerance=settings.intake_webhook_tolerance_seconds,
            clock=utc_now,
        )
    )
    publish_contract(app)
    return app, runtime


def main() -> None:
    import uvicorn

    settings = get_settings()
    app, _ = create_app(settings)
    uvicorn.run(app, host=settings.intake_http_host, port=settings.intake_http_port, log_level="warning")
