"""Audit service wiring: one durable consumer of every domain event."""

from __future__ import annotations

from functools import partial

from faststream import FastStream

from services.audit.handlers import on_events
from services.audit.store import SCHEMA, SqlLedger
from shared.contracts.envelope import Event
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import AUDIT_LEDGER


def create_app(settings: Settings) -> tuple[FastStream, ServiceRuntime]:
    """Build the audit app for these settings."""
    runtime = ServiceRuntime(settings, service="audit", schema=SCHEMA)
    append = partial(on_events, ledger=SqlLedger())
    append.__doc__ = "Append every domain event to its school's hash-chained ledger, a pulled batch at a time."
    runtime.consumer(
        Event,
        durable=AUDIT_LEDGER,
        batch_handler=append,
        filter_subject=runtime.subjects.all_events,
        batch_size=256,
    )
    app = FastStream(runtime.broker)
    app.on_startup(runtime.start)
    app.after_shutdown(runtime.stop)
    return app, runtime


def main() -> None:
    import asyncio

    app, _ = create_app(get_settings())
    asyncio.run(app.run())
