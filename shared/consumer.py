"""The edge between JetStream and a service's handlers: pulled batches, one transaction each, exactly once per event.

A pulled batch is parsed by the event registry in `DeadLetterMiddleware` (an event that cannot be parsed, or that
shared/admission.py refuses as impossible, is parked on the dead-letter subject with its reason and never reaches
a handler), then `EventBatches` runs the handler for
every event in ONE unit of work: one inbox statement claims the batch, the handler's events are enqueued with one
outbox insert, one commit, then every message is acked. If anything in the batch fails, the batch is rolled back
and each event is tried alone in its own unit of work, so a poison event is retried (and finally dead-lettered)
without holding up or losing the rest.

A batch handler whose batch is one statement claims the batch in that statement (`claims_in_statement`): the
batch then runs without a transaction block, one round trip instead of BEGIN, claim, statement and COMMIT.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace

from shared.admission import Admission
from shared.contracts.envelope import Actor, Event, EventRejected, in_current_span, parse_event, utc_now
from shared.contracts.events import OpsDeadLettered, OpsDeadLetteredPayload
from shared.subjects import Subjects
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
PARSED = "_safeguard_events"
# The messages of the batch being handled (those the middleware kept), in the order of its events: handed to the
# subscriber this way rather than through faststream's `Context("message")`, which fast_depends resolves by a
# call in a worker thread for every batch.
_BATCH: ContextVar[Sequence[Msg]] = ContextVar("safeguard_batch_messages")


def batch_messages() -> Sequence[Msg]:
    """The messages of the pulled batch whose events the current subscriber call was given."""
    return _BATCH.get()


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


class DeadLetters:
    """Parks a message nobody can process on the dead-letter subject, with its reason, and stops redelivery."""

    def __init__(
        self,
        subjects: Subjects,
        *,
        jetstream: Callable[[], JetStreamContext],
        known_school: Callable[[str], bool] = lambda school_id: True,
    ) -> None:
        self._subjects = subjects
        self._jetstream = jetstream
        self._known_school = known_school

    async def park(self, message: Msg, *, consumer: str, reason: str) -> None:
        sequence = _metadata(message, "sequence.stream", default="?")
        headers = {
            "Safeguard-Reason": reason[:1000],
            "Safeguard-Original-Subject": message.subject,
            "Nats-Msg-Id": f"dead:{consumer}:{sequence}",
        }
        await self._jetstream().publish(
            self._subjects.dead_letter(consumer),
            message.data,
            headers=headers,
            stream=self._subjects.dead_letter_stream,
        )
        # Operational alert: a dead letter always needs a person to look at it.
        log.error("DEAD LETTER %s: %s (%s)", consumer, reason, json.dumps(headers))
        await self._announce(message.subject, consumer=consumer, sequence=str(sequence), reason=reason)
        await message.term()

    async def _announce(self, subject: str, *, consumer: str, sequence: str, reason: str) -> None:
        """ops.dead_lettered on the event stream, so routing tells the school's DSL (counts, never content)."""
        school_id, event_type = self._subjects.origin(subject) or ("unknown", "unknown")
        if event_type == OpsDeadLettered.TYPE:
            return  # an alert about an alert would only repeat itself
        if not self._known_school(school_id):
            return  # nobody at a school we do not serve can be told; the error line above is the alert
        announced = OpsDeadLettered.new(
            OpsDeadLetteredPayload(
                consumer=consumer,
                original_type=event_type,
                stream_sequence=sequence,
                reason_code=reason.split(":")[0][:100],
            ),
            school_id=school_id,
            aggregate_id=f"{consumer}:{sequence}",
            actor=Actor(id=consumer, role="service"),
            occurred_at=utc_now(),
        )
        await self._jetstream().publish(
            self._subjects.event(school_id=school_id, event_type=announced.type),
            announced.to_json(),
            headers={"Nats-Msg-Id": f"ops-dead:{consumer}:{sequence}"},
            stream=self._subjects.stream,
        )


class DeadLetterMiddleware(BaseMiddleware):
    """Parses each event of a pulled batch once; parks the ones that are not events, so handlers only see events."""

    def __init__(
        self,
        msg: Any,
        /,
        *,
        context: Any,
        dead_letters: DeadLetters,
        admission: Admission | None = None,
        handles: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        super().__init__(msg, context=context)
        self._dead_letters = dead_letters
        self._admission = admission
        self._handles = handles or {}

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        raw_messages = msg.raw_message
        if not isinstance(raw_messages, list):  # commands (request/reply) are not events
            return await call_next(msg)
        events: list[Event[Any]] = []
        kept: list[Msg] = []
        handled = self._handles.get(_durable_of(raw_messages[0]) or "") if self._handles and raw_messages else None
        for raw in raw_messages:
            if handled is not None and _type_in_subject(raw.subject) not in handled:
                await raw.ack()  # a type its handler ignores: done with, unread (its subscription covers it)
                continue
            try:
                event = parse_event(raw.data)
            except EventRejected as rejected:
                await self._dead_letters.park(raw, consumer=_consumer_of(raw), reason=rejected.reason)
                continue
            refused = self._admission.refusal(raw.subject, event) if self._admission is not None else None
            if refused is not None:
                await self._dead_letters.park(raw, consumer=_consumer_of(raw), reason=refused)
                continue
            events.append(event)
            kept.append(raw)
        if not kept:
            return None
        raw_messages[:] = kept
        msg.body = [raw.data for raw in kept]
        setattr(msg, PARSED, events)
        token = _BATCH.set(kept)
        try:
            return await call_next(msg)
        finally:
            _BATCH.reset(token)


async def decode_events(msg: StreamMessage[Any]) -> list[Event[Any]]:
    """The subscriber's decoder: the events the middleware parsed (the registry upcasts old versions)."""
    parsed = getattr(msg, PARSED, None)
    if parsed is None:
        parsed = [parse_event(raw.data) for raw in msg.raw_message]
    return list(parsed)


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
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        if claims_in_statement is not None and batch_handler is None:
            raise ValueError("only a batch handler claims in its statement")
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
        sequences = (
            {
                event.event_id: sequence
                for event, message in zip(events, messages, strict=True)
                if (sequence := stream_sequence(message)) is not None
            }
            if self._batch_handler is not None
            else {}
        )
        try:
            if self._claims_in_statement is not None and self._claims_in_statement(events):
                async with self._claiming() as work:
                    await self._run_claiming(events, work, sequences)
            else:
                async with self._uow.begin() as work:
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
        the claim, or nothing would stop a redelivery being handled again."""
        assert self._batch_handler is not None
        distinct = _first_of_each(events)
        work.claim_due = Claim(self.name, [event.event_id for event in distinct])
        started_ns = time.time_ns()
        await self._batch_handler(distinct, work=work, stream_sequences=sequences)
        if not work.claim_taken:
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
        delivered = int(_metadata(message, "num_delivered", default=1))
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


def _durable_of(message: Msg) -> str | None:
    """The durable that delivered the message, read from its JetStream reply subject (as `stream_sequence` does)."""
    tokens = (message.reply or "").split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    return tokens[3] if len(tokens) == 9 else tokens[Msg.Ack.Consumer]


def _type_in_subject(subject: str) -> str:
    """`case.triaged` from `<root>.<school>.case.triaged` (an event's subject ends with its type)."""
    aggregate, name = subject.rsplit(".", 2)[-2:]
    return f"{aggregate}.{name}"


def _consumer_of(message: Msg) -> str:
    return str(_metadata(message, "consumer", default="unknown"))


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


def _metadata(message: Msg, path: str, *, default: Any) -> Any:
    try:
        value: Any = message.metadata
        for part in path.split("."):
            value = getattr(value, part)
        return value
    except Exception:
        return default
