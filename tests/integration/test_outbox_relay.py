"""The outbox relay against real servers: published once, re-published safely, and nothing lost while NATS is down."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from services.audit.app import create_app as create_audit
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import concern_received
from tests.support.running import jetstream, running, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def outbox_runtime(settings: Settings) -> ServiceRuntime:
    # Any service's schema has an outbox; audit's is the smallest to stand up.
    _, runtime = create_audit(settings)
    return runtime


async def enqueue(runtime: ServiceRuntime, events) -> None:
    async with transaction(runtime.sessions) as session:
        await runtime.tables.enqueue(session, events)


async def unpublished(runtime: ServiceRuntime) -> int:
    outbox = runtime.tables.outbox
    async with transaction(runtime.sessions) as session:
        return (await session.execute(sa.select(sa.func.count()).where(outbox.c.published_at.is_(None)))).scalar_one()


async def test_committed_events_are_published_once_in_order(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    events = [concern_received() for _ in range(3)]
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await enqueue(runtime, events)
        await enqueue(runtime, events[:1])  # the same event enqueued twice is one row
        runtime.relay.wake()
        await eventually(lambda: unpublished(runtime), until=lambda n: n == 0, what="outbox drained")
        assert await stream_messages(js, settings.stream_name) == 3
        for sequence, event in enumerate(events, start=1):
            message = await js.get_msg(settings.stream_name, sequence)
            assert message.headers is not None and message.headers["Nats-Msg-Id"] == str(event.event_id)
            assert message.data == event.model_dump_json().encode()  # the stored text, never re-serialised


async def test_a_flush_is_marked_by_the_next_read_and_by_stop(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await runtime.relay.stop()  # flushed by hand below
        await enqueue(runtime, [concern_received() for _ in range(2)])
        assert await runtime.relay.flush() == 2
        assert await unpublished(runtime) == 2  # acknowledged, not marked yet: no statement of its own for that
        await enqueue(runtime, [concern_received()])
        assert await runtime.relay.flush() == 1  # the read marked the first two and left them out
        assert await unpublished(runtime) == 1
        await runtime.relay.stop()  # a stopping relay marks what it published
        assert await unpublished(runtime) == 0
        assert await stream_messages(js, settings.stream_name) == 3


async def test_a_publish_whose_mark_was_lost_is_dropped_by_the_duplicate_window(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    event = concern_received()
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await enqueue(runtime, [event])
        await runtime.relay.flush()
        await runtime.relay.mark()
        # Simulate a crash between the stream's ack and the row's update: the row is pending again.
        async with transaction(runtime.sessions) as session:
            await session.execute(sa.update(runtime.tables.outbox).values(published_at=None))
        assert await runtime.relay.flush() == 1
        assert await stream_messages(js, settings.stream_name) == 1


async def test_events_committed_while_nats_is_down_are_published_when_it_returns(
    settings: Settings, private_nats
) -> None:
    settings = settings.model_copy(update={"nats_url": private_nats.url})
    runtime = outbox_runtime(settings)
    async with running(runtime, subscribers=False):
        private_nats.stop()
        events = [concern_received() for _ in range(2)]
        await enqueue(runtime, events)
        runtime.relay.wake()
        assert await unpublished(runtime) == 2
        private_nats.start()
        await eventually(lambda: unpublished(runtime), until=lambda n: n == 0, timeout=30, what="outbox drained")
        async with jetstream(settings) as (_, js):
            assert await stream_messages(js, settings.stream_name) == 2


async def test_a_publish_the_stream_refuses_stays_unpublished_with_everything_after_it(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    events = [concern_received() for _ in range(3)]
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await runtime.relay.stop()  # flushed by hand below
        await enqueue(runtime, events)
        # Every publish names a stream that does not hold its subject: the stream answers each with an error.
        runtime.relay._subjects = replace(runtime.subjects, stream=f"{settings.stream_name}_ELSEWHERE")
        with pytest.raises(RuntimeError, match="3 outbox events not acknowledged"):
            await runtime.relay.flush()
        assert await unpublished(runtime) == 3
        runtime.relay._subjects = runtime.subjects
        assert await runtime.relay.flush() == 3
        await runtime.relay.mark()
        assert await unpublished(runtime) == 0
        assert await stream_messages(js, settings.stream_name) == 3
