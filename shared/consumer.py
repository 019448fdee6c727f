"""The edge between JetStream and a handler: parse, dedupe, run in one transaction, ack.

A handler is `async (event, *, session) -> list[Event]`. It runs inside the transaction that also records
the inbox row and enqueues its events in the outbox, so a redelivered event is a no-op and no effect is lost.
Unparseable events and events that keep failing are parked on the dead-letter subject with their reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from faststream.nats import NatsBroker
from faststream.nats.message import NatsMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event, EventRejected, parse_event
from shared.db import transaction
from shared.inbox_outbox import InboxOutbox
from shared.subjects import Subjects
from shared.tracing import span_in_trace

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[list[Event[Any]]]]


class Waker(Protocol):
    def wake(self) -> None: ...


class EventConsumer:
    """Runs one handler for one durable consumer, exactly once per event id."""

    def __init__(
        self,
        *,
        name: str,
        handler: Handler,
        sessions: async_sessionmaker[AsyncSession],
        tables: InboxOutbox,
        broker: NatsBroker,
        subjects: Subjects,
        relay: Waker | None = None,
        max_deliver: int = 10,
        retry_delay_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self._handler = handler
        self._sessions = sessions
        self._tables = tables
        self._broker = broker
        self._subjects = subjects
        self._relay = relay
        self.max_deliver = max_deliver
        self._retry_delay = retry_delay_seconds

    async def consume(self, message: NatsMessage) -> None:
        """Process one delivery and settle it (ack, nack for retry, or park and term)."""
        try:
            event = parse_event(message.body)
        except EventRejected as rejected:
            await self._park(message, reason=rejected.reason)
            return
        try:
            with span_in_trace(
                f"{self.name} {event.type}",
                traceparent=event.traceparent,
                **{"safeguard.event_id": str(event.event_id)},
            ):
                handled = await self.process(event)
        except Exception as exc:
            delivered = _delivery_count(message)
            if delivered >= self.max_deliver:
                log.exception("%s: giving up on %s after %d deliveries", self.name, event.event_id, delivered)
                await self._park(message, reason=f"handler failed {delivered} times: {exc!r}")
                return
            log.warning("%s: %s failed (delivery %d), will retry: %r", self.name, event.event_id, delivered, exc)
            await message.nack(delay=self._retry_delay * delivered)
            return
        await message.ack()
        if handled and self._relay is not None:
            self._relay.wake()

    async def process(self, event: Event[Any]) -> bool:
        """Run the handler once for this event id; False when it was a duplicate."""
        async with transaction(self._sessions) as session:
            if not await self._tables.claim(session, consumer=self.name, event_id=event.event_id):
                log.info("%s: duplicate %s skipped", self.name, event.event_id)
                return False
            produced = await self._handler(event, session=session)
            await self._tables.enqueue(session, produced)
        return True

    async def _park(self, message: NatsMessage, *, reason: str) -> None:
        """Put the raw message on the dead-letter subject with its reason, then stop redelivery."""
        subject = self._subjects.dead_letter(self.name)
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        headers = {
            "Safeguard-Reason": reason[:1000],
            "Safeguard-Original-Subject": getattr(message.raw_message, "subject", ""),
            "Nats-Msg-Id": f"dead:{self.name}:{_stream_sequence(message)}",
        }
        await self._broker.publish(body, subject, headers=headers, stream=self._subjects.dead_letter_stream)
        # Operational alert: a dead letter always needs a person to look at it.
        log.error("DEAD LETTER %s: %s (%s)", self.name, reason, json.dumps(headers))
        await message.reject()


def _delivery_count(message: NatsMessage) -> int:
    try:
        return int(message.raw_message.metadata.num_delivered)
    except Exception:
        return 1


def _stream_sequence(message: NatsMessage) -> str:
    try:
        return str(message.raw_message.metadata.sequence.stream)
    except Exception:
        return str(message.message_id)
