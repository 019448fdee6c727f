"""The one unit of work every service uses: a transaction, its inbox claims, the events it emits.

    async with uow.begin() as work:
        fresh = await work.claim(consumer, event_ids)    # skip what this consumer already handled
        work.emit(await on_something(event, work=work))  # the handler's events
    # committed: the events are in the outbox, and their rows have been handed to the relay to publish

Intake, every consumer, the deadline loop and the command handlers all write through this, so "transaction,
enqueue, hand over to the relay" is written once. The outbox insert returns the rows' positions, so after COMMIT
the unit of work hands the rows themselves to the relay (`OutboxRelay.hand_over`), which publishes them without
reading them back; a statement that cannot say which rows it wrote only wakes the relay (`work.enqueued()`), which
then reads the outbox.

A unit of work that is one statement (`uow.single_statement()`) runs without a transaction block: PostgreSQL makes
the statement atomic on its own, and the BEGIN and COMMIT round trips are saved. Its events go into the outbox in
that same statement (`InboxOutbox.enqueue_from_sql`), and `work.enqueued(rows)` hands the rows it returned
(`written_rows`) to the relay once it has committed. A consumer
whose batch is one statement claims its events in that statement too (`Work.take_claim`, `InboxOutbox.claim_sql`):
the batch is then one round trip, where BEGIN, the claim, the statement and COMMIT were four.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.envelope import Event
from shared.db import autocommit
from shared.inbox_outbox import InboxOutbox, OutboxRow

T = TypeVar("T")


class Relay(Protocol):
    """What a unit of work tells the outbox relay after it commits (`shared.relay.OutboxRelay`)."""

    def wake(self) -> None:
        """Rows were committed that the relay must read from the outbox."""

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """These rows were committed (in position order): publish them, reading them back only if it must."""


class _NoRelay:
    """No relay behind the work (a work without a service behind it, in tests)."""

    def wake(self) -> None:
        pass

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        pass


NO_RELAY: Relay = _NoRelay()


@dataclass(frozen=True)
class Claim:
    """Events a consumer is about to handle, for its one statement to claim in the inbox (see `Work.take_claim`)."""

    consumer: str
    event_ids: list[uuid.UUID]

    def parameters(self) -> dict[str, Any]:
        """The parameters of `InboxOutbox.claim_sql`'s default spelling."""
        return {"claim_consumer": self.consumer, "claim_ids": self.event_ids}


@dataclass
class Work:
    """An open transaction: the session to write with and the events to publish once it commits."""

    session: AsyncSession
    tables: InboxOutbox
    emitted: list[Event[Any]] = field(default_factory=list)
    woken: list[Callable[[], None]] = field(default_factory=list)
    relay: Relay = NO_RELAY
    written: list[OutboxRow] = field(default_factory=list)
    """The outbox rows this work wrote, handed to the relay once it has committed."""
    claim_due: Claim | None = None
    """Set by the consumer edge when the handler's statement claims the batch: nothing is claimed yet."""
    claim_taken: bool = False
    received: Mapping[uuid.UUID, bytes] = field(default_factory=dict)
    """A batch handler's events as the broker delivered them (by event id), for a handler that keeps an event's JSON
    text (`shared.contracts.envelope.json_text`); empty without a broker."""
    autocommit: bool = False
    """Each statement commits as it returns (`UnitOfWork.single_statement` on a real engine): its writes are
    committed before the next line runs, not at the end of the work."""

    def wake_after_commit(self, wake: Callable[[], None]) -> None:
        """Call `wake` once this transaction has committed (a background worker with new rows to act on)."""
        if wake not in self.woken:
            self.woken.append(wake)

    def enqueued(self, rows: Sequence[OutboxRow] | None = None) -> None:
        """This work's own statement put events in the outbox: hand its `rows` (the ones it returned) to the relay
        once it has committed; without them (a statement that cannot tell), wake the relay to read the outbox."""
        if rows is None:
            self.wake_after_commit(self.relay.wake)
        else:
            self.written.extend(rows)

    def emit(self, events: Iterable[Event[Any]]) -> None:
        """Publish these events if (and only if) the transaction commits."""
        self.emitted.extend(events)

    def take_emitted(self) -> list[Event[Any]]:
        """The events emitted so far, handed to a statement of this unit of work that puts them in the outbox
        itself (in this order, before any emitted later) and passes the rows it wrote to `enqueued`."""
        taken, self.emitted = self.emitted, []
        return taken

    def committed(self) -> None:
        """Hand the written rows to the relay and wake the workers waiting for this commit."""
        if self.written:
            self.relay.hand_over(self.written)
        for wake in self.woken:
            wake()

    def take_claim(self) -> Claim | None:
        """The claim this work's statement must make, if the edge left it to the statement (None: already made).

        That statement inserts the inbox rows (`InboxOutbox.claim_sql`) and changes nothing for an event whose row
        was there before (a redelivery): every write of the statement is joined to the claim's returned ids. Where the
        service's own table already makes a redelivery change nothing (audit's ledger, notifications' deliveries, each
        keyed so the second write finds the first), the handler takes the claim and writes no inbox row."""
        if self.claim_due is None or self.claim_taken:
            return None
        self.claim_taken = True
        return self.claim_due

    async def claim(self, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record that `consumer` handles these events; returns the ones it had not handled before."""
        return await self.tables.claim(self.session, consumer=consumer, event_ids=event_ids)


class UnitOfWork:
    """Opens units of work on one service's schema and wakes its outbox relay after each commit that emitted."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: InboxOutbox,
        *,
        relay: Relay = NO_RELAY,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self._relay = relay
        self._autocommit = autocommit(sessions)

    async def run(self, step: Callable[[Work], Awaitable[T]], *, single_statement: bool = False) -> T:
        """`step` in a unit of work, tried once more when the pooled connection turns out to be dead.

        The pool does not ping a connection before lending it (a round trip on every checkout), so after the
        database restarts the first statement on a stale connection fails; nothing was written then, so the step
        is safe to repeat. Intake goes through here: a report must not get a 5xx for a connection it never used.
        With `single_statement`, the step runs in `single_statement()`.
        """
        begin = self.single_statement if single_statement else self.begin
        try:
            async with begin() as work:
                return await step(work)
        except DBAPIError as failure:
            if not failure.connection_invalidated:
                raise
        async with begin() as work:
            return await step(work)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Work]:
        """One transaction: commits (with the emitted events in the outbox) on success, rolls back on error."""
        async with self.sessions() as session, session.begin():
            work = Work(session, self.tables, relay=self._relay)
            yield work
            if work.emitted:
                work.enqueued(await self.tables.enqueue(session, work.emitted))
        work.committed()

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[Work]:
        """A unit of work of statements each atomic alone (autocommit): no BEGIN or COMMIT round trip.

        For work that is one statement (or several that need no common transaction). It cannot `emit`: a
        statement that publishes puts its events in the outbox itself and calls `work.enqueued(rows)`.
        """
        if self._autocommit is None:
            async with self.begin() as work:
                yield work
            return
        async with self.sessions(bind=self._autocommit) as session:
            work = Work(session, self.tables, relay=self._relay, autocommit=True)
            yield work
            if work.emitted:
                raise RuntimeError("a single-statement unit of work enqueues its events in its statement")
        work.committed()
