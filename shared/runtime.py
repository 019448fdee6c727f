"""What every service process holds: settings, database, broker, outbox relay; started and stopped once."""

from __future__ import annotations

import logging
from typing import Any

from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.message import NatsMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.consumer import EventConsumer, Handler
from shared.contracts.envelope import Event
from shared.db import ensure_database, make_engine, session_factory
from shared.inbox_outbox import InboxOutbox
from shared.logs import configure_logging
from shared.messaging import ensure_streams, jetstream, make_broker, pull_inbox_prefix
from shared.migrations import migrate
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.subjects import Subjects
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)

MAX_DELIVER = 10


class ServiceRuntime:
    """The shared plumbing of one service: its schema, its broker, its outbox relay."""

    def __init__(self, settings: Settings, *, service: str, schema: str | None = None) -> None:
        self.settings = settings
        self.service = service
        self.schema = schema or service
        self.subjects = Subjects.from_settings(settings)
        self.broker: NatsBroker = make_broker(settings, service=service)
        self.engine: AsyncEngine = make_engine(settings.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.tables = InboxOutbox(self.schema)
        self.relay = OutboxRelay(
            sessions=self.sessions,
            tables=self.tables,
            broker=self.broker,
            subjects=self.subjects,
            poll_seconds=settings.outbox_poll_seconds,
        )

    def consumer(
        self,
        handler: Handler,
        *,
        durable: str,
        filter_subject: str,
        description: str = "",
        batch_size: int = 16,
    ) -> EventConsumer:
        """Register a durable pull consumer, shared by every instance, running `handler` once per event."""
        consumer = EventConsumer(
            name=durable,
            handler=handler,
            sessions=self.sessions,
            tables=self.tables,
            broker=self.broker,
            subjects=self.subjects,
            relay=self.relay,
            max_deliver=MAX_DELIVER,
        )
        subscriber = self.broker.subscriber(
            filter_subject,
            stream=JStream(self.subjects.stream, declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
            inbox_prefix=pull_inbox_prefix(self.settings),
            ack_policy=AckPolicy.MANUAL,
            config=ConsumerConfig(
                durable_name=durable,
                ack_policy=JsAckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=MAX_DELIVER + 1,
                ack_wait=self.settings.ack_wait_seconds,
            ),
            title=durable,
            description=description or (handler.__doc__ or "").strip(),
        )

        async def on_message(body: Any, message: NatsMessage = Context("message")) -> None:
            # The raw body is parsed by the event registry, so a bad event is parked with its reason.
            await consumer.consume(message)

        subscriber(on_message)
        return consumer

    def publishes(self, *event_classes: type[Event[Any]]) -> None:
        """Declare the events this service publishes (through its outbox), for the AsyncAPI catalogue."""
        for event_class in event_classes:
            self.broker.publisher(
                self.subjects.of_type(event_class.TYPE),
                title=f"{event_class.TYPE} v{event_class.VERSION}",
                description=(event_class.__doc__ or "").strip(),
                schema=event_class,
            )

    async def start(self, *, migrate_schema: bool = True) -> None:
        """Connect, migrate this service's schema, declare streams, start the outbox relay."""
        configure_logging(self.settings.log_level)
        configure_tracing(self.service, console=self.settings.otel_console)
        if migrate_schema:
            await ensure_database(self.settings.database_url)
            await migrate(self.engine, service=self.service, schema=self.schema)
        await self.broker.connect()
        await ensure_streams(jetstream(self.broker), self.settings)
        self.relay.start()
        self.relay.wake()
        log.info("%s ready (stream %s, subjects %s.>)", self.service, self.subjects.stream, self.subjects.root)

    async def stop(self) -> None:
        await self.relay.stop()
        await self.engine.dispose()
