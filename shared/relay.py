"""Publishes a service's outbox to JetStream in order, a batch at a time, marking rows once the stream has them.

One relay per schema publishes at a time (a PostgreSQL session advisory lock held on its own connection; another
instance takes over when that connection goes), so the stream receives each service's events in outbox order.
A batch is read with one statement and published asynchronously (every publish in flight at once, then the acks
awaited); the acknowledged prefix is marked by the *next* read, in the same statement (a CTE: mark what the last
batch published, read the next batch without those rows), so a flush is one round trip, not two. A relay with
nothing new to read marks at its next poll tick (a read that finds nothing) and when it stops. No transaction is
held open across the network, and no statement needs a transaction block of its own (each is atomic alone). A
publish that reached the stream but whose row was not marked (a crash in between, or before the next read) is
published again and dropped by the stream's duplicate window, since the message id is the event id.

The publishes are plain NATS publishes with a reply subject under one inbox the relay subscribes to once
(`<inbox>.<flush>.<row>`), which is what JetStream's asynchronous publish does; a flush then counts its acks
instead of keeping a future, a semaphore slot and a callback for every row (nats-py's `publish_async`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.background import PollingLoop
from shared.inbox_outbox import InboxOutbox
from shared.subjects import Subjects
from shared.tracing import exporting, record_batch_spans

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves committed outbox rows onto the event stream."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        tables: InboxOutbox,
        nats: Callable[[], Client],
        subjects: Subjects,
        schema: str,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        publish_timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The read sees the table as it was before its own update: the rows it marks are left out by position.
        self._read = sa.text(
            f'with marked as (update "{schema}".outbox set published_at = now() '
            "where position = any(cast(:marked as bigint[]))) "
            "select position, event_id::text as event_id, subject_school, event_type, body, traceparent "
            f'from "{schema}".outbox where published_at is null and position <> all(cast(:marked as bigint[])) '
            "order by position limit :limit"
        )
        self._mark = sa.text(
            f'update "{schema}".outbox set published_at = now() where position = any(cast(:marked as bigint[]))'
        )
        self._unmarked: list[int] = []  # acknowledged by the stream, marked by the next statement
        self._nats = nats
        self._acks = _Acks()
        self._subjects = subjects
        self._lock_key = zlib.crc32(f"safeguard-relay:{schema}".encode())
        self._lock_connection: AsyncConnection | None = None
        self._batch_size = batch_size
        self._publish_timeout = publish_timeout
        self._loop = PollingLoop(self.flush, name="outbox-relay", poll_seconds=poll_seconds)

    def wake(self) -> None:
        """Ask for a flush soon (after a commit added rows)."""
        self._loop.wake()

    async def flush(self) -> int:
        """Publish every pending row, if this instance is the schema's relay; returns how many were published."""
        if not await self._lead():
            return 0
        published = 0
        try:
            while True:
                batch = await self._flush_batch()
                published += batch
                if batch < self._batch_size:
                    return published
        except Exception:
            await self._resign()  # the lock's connection may be gone too; take the lock afresh next time
            raise

    async def _lead(self) -> bool:
        """Hold (or take) the relay lock for this schema on a connection of its own."""
        if self._lock_connection is not None:
            return True
        connection = await self._engine.connect()
        try:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            taken = (await connection.execute(sa.select(sa.func.pg_try_advisory_lock(self._lock_key)))).scalar()
        except Exception:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._lock_connection = connection
        return True

    async def _resign(self) -> None:
        connection, self._lock_connection = self._lock_connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                await connection.invalidate()

    @contextlib.contextmanager
    def _marking(self) -> Iterator[list[int]]:
        """The rows acknowledged but not marked yet, for one statement to mark; kept for the next if it fails."""
        marked, self._unmarked = self._unmarked, []
        try:
            yield marked
        except BaseException:
            self._unmarked = marked + self._unmarked
            raise

    async def mark(self) -> None:
        """Mark the rows the stream has acknowledged but no statement has marked yet (one statement, if any)."""
        with self._marking() as marked:
            if marked:
                async with self._autocommit.connect() as connection:
                    await connection.execute(self._mark, {"marked": marked})

    async def _flush_batch(self) -> int:
        with self._marking() as marked:
            async with self._autocommit.connect() as connection:
                rows = (await connection.execute(self._read, {"marked": marked, "limit": self._batch_size})).all()
        if not rows:
            return 0
        started_ns = time.time_ns()
        client = self._nats()
        flush = await self._acks.expect(client, len(rows))
        stream = self._subjects.stream
        try:
            for index, row in enumerate(rows):
                headers = {"Nats-Msg-Id": row.event_id, "content-type": "application/json"}
                if row.traceparent:
                    headers["traceparent"] = row.traceparent
                headers[Header.EXPECTED_STREAM] = stream
                subject = self._subjects.event(school_id=row.subject_school, event_type=row.event_type)
                await client.publish(subject, row.body.encode(), reply=flush.reply_to(index), headers=headers)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._publish_timeout):  # (not wait_for: it can lose a cancellation)
                    await flush.done.wait()
        finally:
            self._acks.forget(flush)
        acknowledged = []
        for row, outcome in zip(rows, flush.outcomes, strict=True):
            if outcome is not None:
                # Keep order: nothing after the first failure counts as published; it is sent again next time.
                log.warning("publishing %s failed: %s; will retry", row.event_id, outcome)
                break
            acknowledged.append(row.position)
        if exporting():
            record_batch_spans(
                "publish",
                [(row.event_type, row.event_id, row.traceparent) for row in rows[: len(acknowledged)]],
                started_ns=started_ns,
            )
        self._unmarked.extend(acknowledged)
        if len(acknowledged) < len(rows):
            raise RuntimeError(f"{len(rows) - len(acknowledged)} outbox events not acknowledged by the stream")
        return len(acknowledged)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        try:
            await self.mark()
        except Exception:  # the next relay publishes them again: the stream drops them as duplicates
            log.warning("marking the last published outbox rows failed", exc_info=True)
        await self._resign()


_NO_ACK = "no acknowledgement from the stream in time"


class _Flush:
    """The acks one flush waits for: `outcomes[i]` is None once row i is stored, else why it was not."""

    def __init__(self, flush_id: str, prefix: str, count: int) -> None:
        self.flush_id = flush_id
        self._prefix = prefix
        self.outcomes: list[str | None] = [_NO_ACK] * count
        self._settled = [False] * count
        self._waiting = count
        self.done = asyncio.Event()
        if count == 0:
            self.done.set()

    def reply_to(self, index: int) -> str:
        return f"{self._prefix}{index}"

    def settle(self, index: int, outcome: str | None) -> None:
        """Row `index`'s ack (the first one counts: a repeat of it changes nothing)."""
        if 0 <= index < len(self._settled) and not self._settled[index]:
            self._settled[index] = True
            self.outcomes[index] = outcome
            self._waiting -= 1
            if self._waiting == 0:
                self.done.set()


class _Acks:
    """One inbox subscription (`<inbox>.<flush>.<row>`) receiving the stream's acks for the relay's publishes."""

    def __init__(self) -> None:
        self._client: Client | None = None
        self._subscription: Subscription | None = None
        self._inbox = ""
        self._flushes: dict[str, _Flush] = {}
        self._counter = 0

    async def expect(self, client: Client, count: int) -> _Flush:
        if self._client is not client or self._subscription is None:
            # A new connection (the broker restarted): subscribe on it; nats-py renews it across reconnects itself.
            self._inbox = client.new_inbox()
            self._subscription = await client.subscribe(f"{self._inbox}.*.*", cb=self._on_ack)
            self._client = client
        self._counter += 1
        flush_id = str(self._counter)
        flush = _Flush(flush_id, f"{self._inbox}.{flush_id}.", count)
        self._flushes[flush_id] = flush
        return flush

    def forget(self, flush: _Flush) -> None:
        """Stop waiting for `flush`'s acks (a late one is then ignored; its row is published again next time)."""
        self._flushes.pop(flush.flush_id, None)

    async def _on_ack(self, message: Msg) -> None:
        _, flush_id, index = message.subject.rsplit(".", 2)
        flush = self._flushes.get(flush_id)
        if flush is None or not index.isdigit():
            return
        flush.settle(int(index), _refusal(message))


def _refusal(message: Msg) -> str | None:
    """None when the stream stored the message (or already had it); else the reason it did not."""
    if message.headers and message.headers.get(Header.STATUS) == "503":
        return "no stream answered (503)"
    data = message.data
    if b'"error"' not in data:
        return None
    try:
        error = json.loads(data).get("error")
    except ValueError:
        return "an unreadable reply from the stream"
    return f"refused by the stream: {error}" if error else None
