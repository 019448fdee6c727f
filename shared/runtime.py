"""What every service process holds: settings, database, broker, outbox relay; started and stopped once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from functools import partial
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.admission import Admission, PolicyFolderSchools
from shared.consumer import (
    REDELIVERY_BACKOFF_SECONDS,
    BatchHandler,
    ClaimsInStatement,
    EventBatches,
    Handler,
)
from shared.contracts.envelope import Event
from shared.contracts.events import OpsDeadLettered
from shared.db import ensure_database, make_engine, session_factory
from shared.dead_letters import DeadLetterMiddleware, DeadLetters, batch_messages, decode_events
from shared.inbox_outbox import InboxOutbox
from shared.logs import configure_logging
from shared.long_poll import long_poll
from shared.messaging import ensure_streams, jetstream, make_broker, pull_inbox_prefix
from shared.migrations import migrate
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.subjects import Subjects
from shared.tracing import configure_tracing
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_DELIVER = 10
# For a service whose own concurrency exceeds five connections (intake's HTTP clients, notifications' sends in
# flight): twelve kept and none opened beyond them, so a burst waits for a connection instead of opening and
# closing one (with five + five: 0.2 new PostgreSQL sessions a concern under load, ~7 % of intake's profile).
# Only where no unit of work waits for a second connection while holding one.
WIDE_POOL = (12, 0)


class Worker(Protocol):
    """A background loop a service runs beside its consumers (a dispatcher, a scheduler)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def typed_batch_subscriber(edge: EventBatches, event_class: type[Event[Any]]) -> Callable[..., Awaitable[None]]:
    """The subscriber function faststream calls with a pulled batch, typed so the AsyncAPI shows its payload."""

    async def on_batch(events: list[Any]) -> None:
        await edge.consume(events, batch_messages())

    # Real classes, not strings: faststream validates the batch (already parsed events) and documents the payload.
    on_batch.__annotations__ = {"events": list[event_class], "return": None}  # type: ignore[valid-type]
    on_batch.__name__ = on_batch.__qualname__ = f"on_{edge.name.replace('-', '_')}"
    return on_batch


class ServiceRuntime:
    """The shared plumbing of one service: its schema, its broker, its unit of work and outbox relay."""

    def __init__(
        self, settings: Settings, *, service: str, schema: str | None = None, pool: tuple[int, int] = (5, 5)
    ) -> None:
        """`pool`: connections kept, and opened beyond them in a burst (closed again when they come back)."""
        self.settings = settings
        self.service = service
        self.schema = schema or service
        self.subjects = Subjects.from_settings(settings)
        self.broker: NatsBroker = make_broker(settings, service=service)
        self.engine: AsyncEngine = make_engine(settings.database_url, pool_size=pool[0], max_overflow=pool[1])
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.tables = InboxOutbox(self.schema)
        self.relay = OutboxRelay(
            engine=self.engine,
            tables=self.tables,
            nats=lambda: self.broker.config.connection_state.connection,
            subjects=self.subjects,
            schema=self.schema,
            poll_seconds=settings.outbox_poll_seconds,
        )
        self.uow = UnitOfWork(self.sessions, self.tables, relay=self.relay)
        self.dead_letters = DeadLetters(
            self.subjects,
            jetstream=lambda: jetstream(self.broker),
            known_school=lambda school_id: (
                self.admission.known_school is None or self.admission.known_school(school_id)
            ),
        )
        # Schools are known from the policy folder unless the service knows better (routing: adopted policies).
        self.admission = Admission(root=self.subjects.root, known_school=PolicyFolderSchools(settings.policy_dir))
        self._handles: dict[str, frozenset[str]] = {}  # durable -> the event types its handler reads (if not all)
        self.broker.add_middleware(
            partial(
                DeadLetterMiddleware, dead_letters=self.dead_letters, admission=self.admission, handles=self._handles
            )
        )
        self._workers: list[Worker] = []
        self.publishes(OpsDeadLettered)  # every service's dead-letter path announces what it parks

    def keep_running(self, worker: Worker) -> None:
        """Start `worker` once the runtime is up (after the relay) and stop it before the runtime stops."""
        self._workers.append(worker)

    def consumer(
        self,
        event_class: type[Event[Any]],
        *,
        durable: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        filter_subject: str | None = None,
        description: str = "",
        batch_size: int = 64,
        max_deliver: int = MAX_DELIVER,
        backoff: Sequence[float] = REDELIVERY_BACKOFF_SECONDS,
        traces_events: bool = False,
        handles: Collection[str] | None = None,
        claims_in_statement: ClaimsInStatement | None = None,
        claim_in_transaction: bool = False,
        idempotent: bool = False,
        batch_window: float | None = None,
    ) -> EventBatches:
        """A durable pull consumer shared by every instance: batches of `event_class` through the handler, once each.

        `handles`: the only event types the handler reads, when its filter subject covers more (a durable has one
        filter, and a service's NATS user may create its durables with their own filters only): the others are
        acked at the edge unread, not parsed, claimed or handed to the handler. `claims_in_statement`: for a batch
        handler that handles the batches it says yes to in one statement claiming them as well (no transaction), or
        with `claim_in_transaction` claims them in its first statement of several, in one transaction. `idempotent`:
        for a batch handler whose every statement leaves its tables as one delivery would (a projection of upserts):
        no inbox claim at all, and its statements run without a transaction block. `batch_window`: how long the busy
        consumer waits to fill its batch, when not the service's `batch_window_seconds`."""
        window = self.settings.batch_window_seconds if batch_window is None else batch_window
        if handles is not None:
            self._handles[durable] = frozenset(handles)
        edge = EventBatches(
            name=durable,
            uow=self.uow,
            dead_letters=self.dead_letters,
            handler=handler,
            batch_handler=batch_handler,
            max_deliver=max_deliver,
            backoff=backoff,
            traces_events=traces_events,
            claims_in_statement=claims_in_statement,
            claim_in_transaction=claim_in_transaction,
            idempotent=idempotent,
        )
        subscriber = self.broker.subscriber(
            filter_subject or self.subjects.of_type(event_class.TYPE),
            stream=JStream(self.subjects.stream, declare=False),
            durable=durable,
            # The window is the long poll's own (below); faststream's loop only needs a deadline of its own.
            pull_sub=PullSub(batch_size=batch_size, timeout=max(window, 0.001), batch=True),
            inbox_prefix=pull_inbox_prefix(self.settings),
            ack_policy=AckPolicy.MANUAL,
            decoder=decode_events,
            config=ConsumerConfig(
                durable_name=durable,
                ack_policy=JsAckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=max_deliver + 1,
                # A delivery nobody acked (its instance died): redelivered after ack_wait, then ever more slowly.
                backoff=[min(self.settings.ack_wait_seconds * 2**n, 300.0) for n in range(min(4, max_deliver))],
                ack_wait=self.settings.ack_wait_seconds,
                max_ack_pending=max(1000, batch_size * 4),
            ),
            title=durable,
            description=description or ((handler or batch_handler).__doc__ or "").strip(),
        )
        subscriber(typed_batch_subscriber(edge, event_class))
        # One lingering pull request instead of two per batch window; only a busy consumer waits for more.
        long_poll(subscriber, window=window)
        return edge

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
        for worker in self._workers:
            worker.start()
        log.info("%s ready (stream %s, subjects %s.>)", self.service, self.subjects.stream, self.subjects.root)

    async def stop(self) -> None:
        for worker in reversed(self._workers):
            await worker.stop()
        await self.relay.stop()
        await self.engine.dispose()
