"""A pulled batch is one transaction; a poison event in it is isolated, retried alone and dead-lettered alone."""

from __future__ import annotations

import json
import uuid
from typing import Any

import nats
import sqlalchemy as sa

from shared.contracts.envelope import Event
from shared.contracts.events import ConcernReceived
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.unit_of_work import Work
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, running
from tests.support.waiting import eventually

CONSUMER = "test-batches"


class Recorder:
    """A handler that records each concern it handles in the inbox's own schema, and fails on one of them."""

    def __init__(self, *, poison: uuid.UUID | None = None) -> None:
        self.poison = poison
        self.calls: list[uuid.UUID] = []

    async def __call__(self, event: ConcernReceived, *, work: Work) -> list[Event[Any]]:
        self.calls.append(event.event_id)
        if event.event_id == self.poison:
            raise RuntimeError("this event always fails")
        return []


async def handled(runtime: ServiceRuntime) -> set[uuid.UUID]:
    async with runtime.sessions() as session:
        rows = await session.execute(sa.select(runtime.tables.inbox.c.event_id))
        return set(rows.scalars())


async def dead_letters(settings: Settings) -> list[Any]:
    client = await nats.connect(settings.nats_url)
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(f"{settings.subject_root}-dead.>", stream=f"{settings.stream_name}_DEAD")
        try:
            return list(await subscription.fetch(50, timeout=0.5))
        except nats.errors.TimeoutError:
            return []
    finally:
        await client.close()


async def publish_twice(js: Any, settings: Settings, events: list[ConcernReceived]) -> None:
    """Each event, then each again under a new message id (past the broker's dedupe), before a consumer starts."""
    for event in events:
        await publish_raw(js, settings, event)
    for event in events:
        await publish_raw(js, settings, event, msg_id=f"again-{event.event_id}")


def runtime_with(settings: Settings, recorder: Recorder) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, service="intake")  # any service's schema holds an inbox
    runtime.consumer(ConcernReceived, durable=CONSUMER, handler=recorder, batch_size=32, max_deliver=2, backoff=(0.1,))
    return runtime


async def test_a_poison_event_is_dead_lettered_alone_while_the_rest_of_its_batch_commits(settings: Settings) -> None:
    concerns = [concern_received() for _ in range(12)]
    poison = concerns[5]
    recorder = Recorder(poison=poison.event_id)
    runtime = runtime_with(settings, recorder)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        for concern in concerns:  # on the stream before the consumer starts, so they come as one batch
            await publish_raw(js, settings, concern)
        await runtime.broker.start()
        healthy = {c.event_id for c in concerns} - {poison.event_id}
        await eventually(lambda: handled(runtime), until=lambda ids: ids == healthy, what="the healthy events")
        [parked] = await eventually(lambda: dead_letters(settings), what="the poison parked")
        assert uuid.UUID(json.loads(parked.data)["event_id"]) == poison.event_id
        assert "handler failed 2 times" in parked.headers["Safeguard-Reason"]
        await eventually(
            lambda: js.consumer_info(settings.stream_name, CONSUMER),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="the consumer drained",
        )
    assert await handled(runtime) == healthy  # nothing of the poison's was committed
    assert recorder.calls.count(poison.event_id) >= 2  # in the batch, then alone until its deliveries ran out
    assert all(recorder.calls.count(event_id) <= 2 for event_id in healthy)  # batch tried, then each alone, once


async def test_a_malformed_event_in_a_batch_is_parked_with_its_reason_and_the_rest_are_handled(
    settings: Settings,
) -> None:
    concerns = [concern_received() for _ in range(5)]
    recorder = Recorder()
    runtime = runtime_with(settings, recorder)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await publish_raw(js, settings, concerns[0])
        await publish_raw(js, settings, concerns[1], body=b'{"type": "concern.received", "version": 1}', msg_id="bad")
        for concern in concerns[1:]:
            await publish_raw(js, settings, concern)
        await runtime.broker.start()
        await eventually(
            lambda: handled(runtime), until=lambda ids: ids == {c.event_id for c in concerns}, what="all good ones"
        )
        [parked] = await eventually(lambda: dead_letters(settings), what="the malformed one parked")
    assert parked.headers["Safeguard-Reason"].startswith("malformed concern.received")
    assert sorted(recorder.calls) == sorted(c.event_id for c in concerns)  # each handled once, in one batch


async def test_a_redelivered_batch_changes_nothing(settings: Settings) -> None:
    concerns = [concern_received() for _ in range(6)]
    recorder = Recorder()
    runtime = runtime_with(settings, recorder)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await publish_twice(js, settings, concerns)
        await runtime.broker.start()
        await eventually(
            lambda: js.consumer_info(settings.stream_name, CONSUMER),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="the consumer drained",
        )
    assert sorted(recorder.calls) == sorted(c.event_id for c in concerns)


class ClaimingRecorder:
    """A batch handler whose one statement claims the batch (no transaction block): records what it claimed."""

    def __init__(self, *, poison: uuid.UUID | None = None, claims: bool = True) -> None:
        self.poison = poison
        self.claims = claims
        self.given: list[uuid.UUID] = []
        self.claimed: list[uuid.UUID] = []
        self.received: dict[uuid.UUID, bytes] = {}

    async def __call__(self, events: list[Event[Any]], *, work: Work, stream_sequences: Any) -> None:
        self.given += [event.event_id for event in events]
        self.received.update(work.received)
        if any(event.event_id == self.poison for event in events):
            raise RuntimeError("this event always fails")  # before the statement: nothing of the batch is kept
        claim = work.take_claim() if self.claims else None
        if claim is None:
            return
        statement = sa.text(f"with claimed as ({work.tables.claim_sql()}) select event_id from claimed")
        rows = await work.session.execute(statement, {"claim_consumer": claim.consumer, "claim_ids": claim.event_ids})
        self.claimed += list(rows.scalars())


def claiming_runtime(settings: Settings, recorder: ClaimingRecorder, *, idempotent: bool = False) -> ServiceRuntime:
    """A consumer whose batch handler claims its batch in its statement (`idempotent`: has no claim to make)."""
    runtime = ServiceRuntime(settings, service="intake")
    runtime.consumer(
        ConcernReceived,
        durable=CONSUMER,
        batch_handler=recorder,
        batch_size=32,
        max_deliver=2,
        backoff=(0.1,),
        claims_in_statement=None if idempotent else lambda events: True,
        idempotent=idempotent,
    )
    return runtime


async def test_a_batch_claimed_in_its_statement_skips_a_redelivery_and_isolates_a_poison_event(
    settings: Settings,
) -> None:
    concerns = [concern_received() for _ in range(8)]
    poison = concerns[3]
    recorder = ClaimingRecorder(poison=poison.event_id)
    runtime = claiming_runtime(settings, recorder)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await publish_twice(js, settings, concerns)
        await runtime.broker.start()
        healthy = {c.event_id for c in concerns} - {poison.event_id}
        await eventually(lambda: handled(runtime), until=lambda ids: ids == healthy, what="the healthy events")
        await eventually(lambda: dead_letters(settings), until=lambda parked: len(parked) == 2, what="poison parked")
        await eventually(
            lambda: js.consumer_info(settings.stream_name, CONSUMER),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="the consumer drained",
        )
    assert sorted(recorder.claimed) == sorted(healthy)  # each claimed once: the redeliveries were skipped
    assert await handled(runtime) == healthy


async def test_a_batch_handler_that_leaves_its_claim_unmade_fails_its_batch(settings: Settings) -> None:
    concern = concern_received()
    recorder = ClaimingRecorder(claims=False)
    runtime = claiming_runtime(settings, recorder)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await publish_raw(js, settings, concern)
        await runtime.broker.start()
        await eventually(lambda: dead_letters(settings), until=lambda parked: len(parked) == 1, what="parked")
    assert recorder.given.count(concern.event_id) == 2 and not await handled(runtime)


async def test_an_idempotent_batch_handler_claims_nothing_is_given_the_bytes_delivered_and_a_poison_event_is_parked(
    settings: Settings,
) -> None:
    concerns = [concern_received() for _ in range(6)]
    poison = concerns[2]
    recorder = ClaimingRecorder(poison=poison.event_id)  # would take a claim if one were due: none is
    runtime = claiming_runtime(settings, recorder, idempotent=True)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        await publish_twice(js, settings, concerns)
        await runtime.broker.start()
        await eventually(lambda: dead_letters(settings), until=lambda parked: len(parked) == 2, what="poison parked")
        await eventually(
            lambda: js.consumer_info(settings.stream_name, CONSUMER),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="the consumer drained",
        )
    healthy = [c for c in concerns if c is not poison]
    assert {c.event_id for c in healthy} <= set(recorder.given)
    assert {c.event_id: recorder.received[c.event_id] for c in healthy} == {c.event_id: c.to_json() for c in healthy}
    assert recorder.claimed == [] and await handled(runtime) == set()
