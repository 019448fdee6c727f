"""Run a service's runtime inside the test's event loop, against the real NATS and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from shared.contracts import parse_event
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import Subjects


@asynccontextmanager
async def running(runtime: ServiceRuntime, *, subscribers: bool = True) -> AsyncIterator[ServiceRuntime]:
    """Start the runtime (migrations, streams, relay) and its subscribers; stop them afterwards."""
    await runtime.start()
    if subscribers:
        await runtime.broker.start()
    try:
        yield runtime
    finally:
        await runtime.broker.stop()
        await runtime.stop()


@asynccontextmanager
async def jetstream(settings: Settings) -> AsyncIterator[tuple[Client, JetStreamContext]]:
    """A plain nats-py connection, as an outside publisher or inspector would have."""
    client = await nats.connect(settings.nats_url)
    try:
        yield client, client.jetstream()
    finally:
        await client.close()


async def publish_raw(
    js: JetStreamContext,
    settings: Settings,
    event: Any,
    *,
    msg_id: str | None = None,
    body: bytes | None = None,
) -> Any:
    """Publish an event the way the outbox relay does (Nats-Msg-Id = event id unless told otherwise)."""
    subject = Subjects.from_settings(settings).event(school_id=event.school_id, event_type=event.type)
    return await js.publish(
        subject,
        body if body is not None else event.to_json(),
        headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
    )


async def stream_events(js: JetStreamContext, settings: Settings, event_type: str, *, limit: int = 500) -> list[Any]:
    """Every `event_type` event on this run's stream so far (any school), parsed, oldest first."""
    subject = f"{settings.subject_root}.*.{event_type}"
    subscription = await js.pull_subscribe(subject, stream=settings.stream_name)
    try:
        messages = await subscription.fetch(limit, timeout=0.5)
    except TimeoutError:  # nats' own, or asyncio's when the fetch's wait ends first: nothing there yet
        return []
    finally:
        await subscription.unsubscribe()
    return [parse_event(message.data) for message in messages]


async def stream_messages(js: JetStreamContext, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages
