"""The consumer edge's first step: each pulled message parsed once, and what cannot be handled parked.

`DeadLetterMiddleware` parses the events of a pulled batch with the event registry; an event that cannot be
parsed, or that shared/admission.py refuses as impossible, goes to `DeadLetters` (the dead-letter subject, with
its reason, and an ops.dead_lettered announcement) and never reaches a handler. The kept messages reach the
subscriber beside their events (`batch_messages`), and shared/consumer.py handles them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared.admission import Admission
from shared.contracts.envelope import Actor, Event, EventRejected, parse_event, utc_now
from shared.contracts.events import OpsDeadLettered, OpsDeadLetteredPayload
from shared.subjects import Subjects

log = logging.getLogger(__name__)

PARSED = "_safeguard_events"
# The messages of the batch being handled (those the middleware kept), in the order of its events: handed to the
# subscriber this way rather than through faststream's `Context("message")`, which fast_depends resolves by a
# call in a worker thread for every batch.
_BATCH: ContextVar[Sequence[Msg]] = ContextVar("safeguard_batch_messages")


def batch_messages() -> Sequence[Msg]:
    """The messages of the pulled batch whose events the current subscriber call was given."""
    return _BATCH.get()


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
        sequence = message_metadata(message, "sequence.stream", default="?")
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
    return str(message_metadata(message, "consumer", default="unknown"))


def message_metadata(message: Msg, path: str, *, default: Any) -> Any:
    try:
        value: Any = message.metadata
        for part in path.split("."):
            value = getattr(value, part)
        return value
    except Exception:
        return default
