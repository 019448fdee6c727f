"""Notifications service wiring: a durable consumer of notification requests, and the acknowledgement API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.handlers import on_notifications_requested
from services.notifications.http import router
from services.notifications.push_command import AUDIENCE, PushRequests, register_push_requests
from services.notifications.receipts_http import receipts_router
from services.notifications.settings import NotificationSettings
from services.notifications.store import SCHEMA, SqlDeliveries
from services.notifications.wiring import ack_links, build_channels, channel_routers
from shared.actor_tokens import ActorVerifier
from shared.collector import settle_collector
from shared.consumer import every_batch
from shared.contracts.envelope import utc_now
from shared.contracts.events import (
    NotificationAcknowledged,
    NotificationDelivered,
    NotificationFailed,
    NotificationRequested,
    NotificationSent,
)
from shared.runtime import WIDE_POOL, ServiceRuntime
from shared.settings import Settings, get_settings
from shared.subjects import NOTIFICATIONS_REQUESTS
from shared.tracing import shutdown_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> tuple[FastAPI, ServiceRuntime]:
    """Build the notifications app for these settings."""
    runtime = ServiceRuntime(settings, service="notifications", schema=SCHEMA, pool=WIDE_POOL)
    runtime.publishes(NotificationSent, NotificationDelivered, NotificationFailed, NotificationAcknowledged)
    options = NotificationSettings()
    signer = ack_links(settings, options)
    deliveries = SqlDeliveries()
    kit = build_channels(settings, sessions=runtime.sessions, options=options)
    dispatcher = Dispatcher(
        uow=runtime.uow,
        deliveries=deliveries,
        channels=kit.channels,
        signer=signer,
        console_url=settings.console_url,
        clock=utc_now,
        rules=DeliveryRules(
            max_attempts=options.delivery_max_attempts,
            backoff_seconds=tuple(options.delivery_backoff_seconds),
            sending_timeout=timedelta(seconds=options.delivery_sending_timeout_seconds),
            concurrency=options.delivery_concurrency,
        ),
        poll_seconds=options.delivery_poll_seconds,
    )
    # Workers stop in the reverse order: the dispatcher first, so no send is under way when the channels close.
    runtime.keep_running(kit)
    record = partial(on_notifications_requested, deliveries=deliveries, clock=utc_now, dispatcher=dispatcher)
    record.__doc__ = "Record each requested notification once; the dispatcher sends it and reports sent or failed."
    runtime.consumer(
        NotificationRequested, durable=NOTIFICATIONS_REQUESTS, batch_handler=record, claims_in_statement=every_batch
    )
    runtime.keep_running(dispatcher)
    # The console subscribes a signed-in person's browser here, with an assertion it signed for that person.
    verifier = ActorVerifier.from_folder(settings.actor_keys_dir, audience=AUDIENCE)
    register_push_requests(
        runtime,
        PushRequests(uow=runtime.uow, verifier=verifier, application_server_key=kit.vapid.public, clock=utc_now),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await runtime.broker.start()
        try:
            yield
        finally:
            await runtime.broker.stop()
            await runtime.stop()

    app = FastAPI(title="Safeguard notifications", version="1", lifespan=lifespan)
    app.include_router(
        router(
            uow=runtime.uow,
            deliveries=deliveries,
            signer=signer,
            clock=utc_now,
            console_url=settings.console_url,
        )
    )
    app.include_router(
        receipts_router(
            uow=runtime.uow,
            deliveries=deliveries,
            signer=signer,
            sms_callback_url=options.sms_status_callback_url,
            sms_auth_token=options.sms_auth_token.get_secret_value(),
            clock=utc_now,
        )
    )
    for extra in channel_routers(kit, sessions=runtime.sessions, deliveries=deliveries, signer=signer, clock=utc_now):
        app.include_router(extra)
    return app, runtime


def main() -> None:
    import uvicorn

    settings = get_settings()
    app, _ = create_app(settings)
    settle_collector()
    try:
        uvicorn.run(
            app, host=settings.notifications_http_host, port=settings.notifications_http_port, log_level="warning"
        )
    finally:
        shutdown_tracing()  # export the spans still queued
