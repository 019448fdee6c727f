"""The edge between JetStream and a service's handlers: pulled batches, one transaction each, exactly once per event.

A pulled batch is parsed by the event registry in `DeadLetterMiddleware` (shared/dead_letters.py: an event that cannot
be parsed, or that shared/admission.py refuses as impossible, is parked on the dead-letter subject with its reason and
never reaches a handler), then `EventBatches` runs the handler for every event in ONE unit of work: one inbox
statement claims the batch, the handler's events are enqueued with one outbox insert, one commit, then every message
is acked. If anything in the batch fails, the batch is rolled back and each event is tried alone in its own unit of
work, so a poison event is retried (and finally dead-lettered) without holding up or losing the rest.

A batch handler whose batch is one statement claims the batch in that statement (`claims_in_statement`): the
batch then runs without a transaction block, one round trip instead of BEGIN, claim, statement and COMMIT. A batch
handler that is idempotent by itself (`idempotent`: each of its statements leaves its tables as one delivery of the
batch would, however often the batch comes, as the console's read model does) claims nothing: no inbox rows, and its
statements run without a transaction block.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from nats.aio.msg import Msg
from opentelemetry import trace

from shared.contracts.envelope import Event, in_current_span
from shared.dead_letters import DeadLetters, message_metadata
from shared.tracing import exporting, record_batch_spans, span_in_trace
from shared.unit_of_work import Claim, UnitOfWork, Work

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[list[Event[Any]]]]
"""`async (event, *, work) -> events`: one event at a time, inside the batch's unit of work."""
BatchHandler = Callable[..., Awaitable[None]]
"""`async (events, *, work, stream_sequences) -> None`: the whole batch at once (audit appends it with one insert).

`stream_sequences` maps each event id to its sequence in the stream (empty when there is no broker). A batch handler
that emits events builds each one inside `handling(consumer, cause)`, so the next hop is a child of that span."""
ClaimsInStatement = Callable[[Sequence[Event[Any]]], bool]
"""Whether a batch handler handles this batch in one statement that claims it too (`Work.take_claim`)."""


def every_batch(events: Sequence[Event[Any]]) -> bool:
    """`claims_in_statement` for a batch handler whose every batch is one statement."""
    return True


# How long JetStream waits before redelivering an event whose handler failed: the n-th failure waits the n-th
# entry (the last one repeats). Also given to the consumer as its `backoff`, for deliveries nobody acked.
REDELIVERY_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
_NO_SPAN = nullcontext(trace.INVALID_SPAN)


def handling(consumer: str, event: Event[Any]) -> AbstractContextManager[Any]:
    """The span in which `consumer` handles `event`: events built inside it carry it as their trace parent."""
    if not exporting():
        return _NO_SPAN  # as span_in_trace would, without naming a span for nobody
    return span_in_trace(
        f"{consumer} {event.type}", traceparent=event.traceparent, **{"safeguard.event_id": str(event.event_id)}
    )


def redelivery_delay(delivered: int, backoff: Sequence[float] = REDELIVERY_BACKOFF_SECONDS) -> float:
    """Seconds to wait before the next delivery after the `delivered`-th one failed."""
    return backoff[min(max(delivered, 1), len(backoff)) - 1]


class EventBatches:
    """Runs one durable consumer's handler over pulled batches, exactly once per event id."""

    def __init__(
        self,
        *,
        name: str,
        uow: UnitOfWork,
        dead_letters: DeadLetters,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        max_deliver: int = 10,
        backoff: Sequence[float] = REDELIVERY_BACKOFF_SECONDS,
        traces_events: bool = False,
        claims_in_statement: ClaimsInStatement | None = None,
        claim_in_transaction: bool = False,
        idempotent: bool = False,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        if (claims_in_statement is not None or idempotent) and batch_handler is None:
            raise ValueError("only a batch handler claims in its statement or needs no claim")
        if idempotent:
            claims_in_statement = every_batch  # run as a handler claiming in its statement, with no claim to make
        self._idempotent = idempotent
        self._claims_in_statement = claims_in_statement
        # The handler's first statement claims, the rest of the batch's statements share its transaction.
        self._claiming = uow.begin if claim_in_transaction else uow.single_statement
        self._traces_events = traces_events  # the batch handler opens `handling` spans itself
        self.name = name
        self._uow = uow
        self._dead_letters = dead_letters
        self._handler = handler
        self._batch_handler = batch_handler
        self.max_deliver = max_deliver
        self._backoff = tuple(backoff)

    async def consume(self, events: Sequence[Event[Any]], messages: Sequence[Msg]) -> None:
        """Process a batch (events[i] came in messages[i]) and settle every message."""
        sequences: dict[uuid.UUID, int] = {}
        received: dict[uuid.UUID, bytes] = {}
        if self._batch_handler is not None:
            for event, message in zip(events, messages, strict=True):
                received[event.event_id] = message.data
                if (sequence := stream_sequence(message)) is not None:
                    sequences[event.event_id] = sequence
        try:
            if self._claims_in_statement is not None and self._claims_in_statement(events):
                async with self._claiming() as work:
                    work.received = received
                    await self._run_claiming(events, work, sequences)
            else:
                async with self._uow.begin() as work:
                    work.received = received
                    await self._run(events, work, sequences)
        except Exception as failure:
            if len(events) == 1:
                await self._failed(messages[0], events[0], failure)
                return
            log.warning(
                "%s: a batch of %d failed (%s); trying each event alone", self.name, len(events), type(failure).__name__
            )
            for event, message in zip(events, messages, strict=True):
                await self.consume([event], [message])
            return
        for message in messages:
            await message.ack()

    async def process(self, events: Sequence[Event[Any]]) -> int:
        """Handle events in one unit of work without a broker (tests, replays); returns how many were new (for a
        handler that claims in its statement: how many it was given, duplicates left out in the statement)."""
        if self._claims_in_statement is not None and self._claims_in_statement(events):
            async with self._claiming() as work:
                return await self._run_claiming(events, work, {})
        async with self._uow.begin() as work:
            return await self._run(events, work, {})

    async def _run_claiming(self, events: Sequence[Event[Any]], work: Work, sequences: dict[uuid.UUID, int]) -> int:
        """The batch handler's one statement claims the events: it is given them all (each id once) and must take
        the claim, or nothing would stop a redelivery being handled again (an idempotent handler has none to take)."""
        assert self._batch_handler is not None
        distinct = _first_of_each(events)
        if not self._idempotent:
            work.claim_due = Claim(self.name, [event.event_id for event in distinct])
        started_ns = time.time_ns()
        await self._batch_handler(distinct, work=work, stream_sequences=sequences)
        if work.claim_due is not None and not work.claim_taken:
            raise RuntimeError(f"{self.name}: the batch handler did not claim its events")
        if not self._traces_events and exporting():
            spans = [(e.type, e.event_id, e.traceparent) for e in distinct]
            record_batch_spans(self.name, spans, started_ns=started_ns)
        return len(distinct)

    async def _run(self, events: Sequence[Event[Any]], work: Work, sequences: dict[uuid.UUID, int]) -> int:
        fresh_ids = await work.claim(self.name, [event.event_id for event in events])
        fresh = [event for event in _first_of_each(events) if event.event_id in fresh_ids]
        if len(fresh) < len(events):
            log.info("%s: %d duplicate event(s) skipped", self.name, len(events) - len(fresh))
        if self._batch_handler is not None:
            if fresh:
                started_ns = time.time_ns()
                await self._batch_handler(fresh, work=work, stream_sequences=sequences)
                if not self._traces_events and exporting():
                    record_batch_spans(
                        self.name, [(e.type, e.event_id, e.traceparent) for e in fresh], started_ns=started_ns
                    )
            return len(fresh)
        assert self._handler is not None
        for event in fresh:
            with handling(self.name, event):
                # Events the handler built are children of this span (the next hop hangs off this one).
                work.emit(in_current_span(await self._handler(event, work=work)))
        return len(fresh)

    async def _failed(self, message: Msg, event: Event[Any], failure: Exception) -> None:
        delivered = int(message_metadata(message, "num_delivered", default=1))
        if delivered >= self.max_deliver:
            log.error("%s: giving up on %s after %d deliveries", self.name, event.event_id, delivered, exc_info=failure)
            await self._dead_letters.park(
                message, consumer=self.name, reason=f"handler failed {delivered} times: {type(failure).__name__}"
            )
            return
        log.warning(
            "%s: %s failed (delivery %d), will retry: %s", self.name, event.event_id, delivered, type(failure).__name__
        )
        await message.nak(delay=redelivery_delay(delivered, self._backoff))


def _first_of_each(events: Sequence[Event[Any]]) -> list[Event[Any]]:
    """The batch without repeats of an event id (a redelivery can land in the same batch)."""
    return list({event.event_id: event for event in events}.values())


def stream_sequence(message: Msg) -> int | None:
    """The message's sequence in its stream, read from its JetStream reply subject (None for any other message).

    The same tokens nats-py's `Msg.metadata` reads, without building its metadata (a timestamp and two objects):
    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or the longer form with
    a domain and account hash in front of the stream."""
    tokens = (message.reply or "").split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    sequence = tokens[5] if len(tokens) == 9 else tokens[Msg.Ack.StreamSeq]
    return int(sequence) if sequence.isdigit() else None
