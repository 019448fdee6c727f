"""The relay publishes a committed unit of work's rows from memory, and falls back to reading the outbox whenever
it cannot be sure nothing comes before them: order, recovery after a crash and after NATS returns are kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from services.audit.app import create_app as create_audit
from shared.contracts.envelope import Event
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import concern_received
from tests.support.running import jetstream, running, stream_messages
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def outbox_runtime(settings: Settings, *, poll_seconds: float = 60.0) -> ServiceRuntime:
    # Audit's schema is the smallest with an outbox; a long poll so that no poll tick reads during a test.
    _, runtime = create_audit(settings.model_copy(update={"outbox_poll_seconds": poll_seconds}))
    return runtime


def outbox_reads(runtime: ServiceRuntime) -> list[str]:
    """Every read of the outbox the runtime's engine runs from now on (the relay's recovery path)."""
    reads: list[str] = []

    def seen(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "outbox where published_at is null" in statement:
            reads.append(statement)

    sa.event.listen(runtime.engine.sync_engine, "before_cursor_execute", seen)
    return reads


async def commit(runtime: ServiceRuntime, events: Sequence[Event[Any]]) -> None:
    async with runtime.uow.begin() as work:
        work.emit(events)


async def committed_behind_the_relays_back(runtime: ServiceRuntime, events: Sequence[Event[Any]]) -> None:
    """Rows no unit of work hands over and nothing wakes the relay for (as another process's would be)."""
    async with transaction(runtime.sessions) as session:
        await runtime.tables.enqueue(session, events)


async def stream_ids(settings: Settings) -> list[str]:
    async with jetstream(settings) as (_, js):
        count = await stream_messages(js, settings.stream_name)
        ids = []
        for sequence in range(1, count + 1):
            message = await js.get_msg(settings.stream_name, sequence)
            assert message.headers is not None
            ids.append(message.headers["Nats-Msg-Id"])
        return ids


def ids(*batches: Sequence[Event[Any]]) -> list[str]:
    return [str(event.event_id) for batch in batches for event in batch]


async def streamed(settings: Settings, count: int) -> list[str]:
    return await eventually(lambda: stream_ids(settings), until=lambda found: len(found) >= count, what="streamed")


async def test_a_unit_of_works_events_reach_the_stream_without_the_outbox_being_read(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    first = [concern_received()]
    batches = [[concern_received() for _ in range(3)] for _ in range(4)]
    async with running(runtime, subscribers=False):
        await commit(runtime, first)  # the relay reads once, to learn where the outbox ends
        await streamed(settings, 1)
        reads = outbox_reads(runtime)
        for batch in batches:
            await commit(runtime, batch)
        assert await streamed(settings, 13) == ids(first, *batches)
        assert reads == []
    async with transaction(runtime.sessions) as session:  # stopping marked them all
        outbox = runtime.tables.outbox
        pending = sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
        assert (await session.execute(pending)).scalar_one() == 0


async def test_rows_nobody_handed_over_are_not_skipped_they_go_out_in_position_order(settings: Settings) -> None:
    runtime = outbox_runtime(settings)
    first, before, foreign, after = ([concern_received() for _ in range(2)] for _ in range(4))
    async with running(runtime, subscribers=False):
        await commit(runtime, first)
        await streamed(settings, 2)
        reads = outbox_reads(runtime)
        await commit(runtime, before)
        await committed_behind_the_relays_back(runtime, foreign)
        await commit(runtime, after)  # a gap before its rows: the relay reads, and finds the foreign rows
        assert await streamed(settings, 8) == ids(first, before, foreign, after)
        assert len(reads) == 1


async def test_a_commit_that_lands_after_a_later_positioned_one_is_published_once_each_in_its_own_order(
    settings: Settings,
) -> None:
    runtime = outbox_runtime(settings)
    first, early, late = ([concern_received() for _ in range(2)] for _ in range(3))
    inserted, go = asyncio.Event(), asyncio.Event()

    async def positioned_first_committed_last() -> None:
        async with runtime.uow.begin() as work:
            work.enqueued(await runtime.tables.enqueue(work.session, early))
            inserted.set()
            await go.wait()

    async with running(runtime, subscribers=False):
        await commit(runtime, first)
        await streamed(settings, 2)
        held = asyncio.create_task(positioned_first_committed_last())
        async with asyncio.timeout(10):
            await inserted.wait()
        await commit(runtime, late)  # positioned after `early`, committed before it: the gap calls for a read
        assert await streamed(settings, 4) == ids(first, late)  # nothing waits for a position that may never commit
        go.set()
        await held
        # As a read after `late`'s commit would have sent them: each unit of work's rows in order, each row once.
        assert await streamed(settings, 6) == ids(first, late, early)


async def test_rows_handed_to_a_relay_that_died_are_published_by_the_next_relays_read(settings: Settings) -> None:
    events = [concern_received() for _ in range(3)]
    runtime = outbox_runtime(settings)
    async with running(runtime, subscribers=False):
        await runtime.relay.stop()  # the process dies between its commit and the publish
        await commit(runtime, events)
    assert await stream_ids(settings) == []
    async with running(outbox_runtime(settings), subscribers=False):
        assert await streamed(settings, 3) == ids(events)


async def test_rows_handed_over_while_nats_is_down_are_published_when_it_returns(
    settings: Settings, private_nats
) -> None:
    settings = settings.model_copy(update={"nats_url": private_nats.url})
    runtime = outbox_runtime(settings, poll_seconds=0.5)
    first, events = [concern_received()], [concern_received() for _ in range(2)]
    async with running(runtime, subscribers=False):
        await commit(runtime, first)
        await streamed(settings, 1)
        private_nats.stop()
        await commit(runtime, events)  # handed over: the publish fails, and the rows wait in the outbox
        private_nats.start()
        found = await eventually(
            lambda: stream_ids(settings), until=lambda found: len(found) >= 3, timeout=40, what="streamed"
        )
        assert found == ids(first, events)
