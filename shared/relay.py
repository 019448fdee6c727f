"""Publishes a service's outbox to JetStream in order, marking rows once the stream has them.

One relay per schema publishes at a time (a PostgreSQL session advisory lock held on its own connection; another
instance takes over when that connection goes), so the stream receives each service's events in outbox order.

Rows reach the relay two ways. The hot path: a unit of work's outbox insert returns the rows' positions, and once it
has committed it hands the rows (position, event id, subject school, type, body text, traceparent: everything a
publish needs) to the relay (`hand_over`), which publishes them from memory, with no statement at all, as long as
they carry on exactly where the relay's knowledge of the outbox ends: the position after the last row it has read
or published (`_next`). The recovery path: the relay reads the outbox (every committed row not yet marked, in
position order, a batch per statement) at start-up, when woken by a commit that could not say which rows it wrote
(`wake`: audit's views and shreds, rows another process committed), after a failed publish, when a handed-over row
does not carry on from `_next` (a gap: rows of another transaction or process in between, or a position used by a
row that conflicted or rolled back), and at least every `poll_seconds` whatever happens (a poll tick: rows another
process committed, a crash between a commit and its hand-over). A read sets `_next` past the last row it found; the
rows handed over before it began are dropped (committed before the read, so it finds them).

Order: a handed-over row goes out from memory only in position order with nothing unknown before it, so the stream
sees the outbox's order whenever the read would have. Concurrent units of work can commit out of position order;
the relay never waits for a position that may never commit (a rolled-back or conflicting insert uses one up too), so
a row committed after a later-positioned row was published (from memory or by a read) goes out late, out of order,
exactly as a read after the later commit would have sent it; each unit of work's own rows stay in order. A gap
before a handed-over row is resolved by a read, never by publishing past it.

Marking: the acknowledged rows are marked by the next read, in the same statement (a CTE: mark what was published,
read the next batch without those rows), so the hot path runs no statement; a read comes at the latest every
`poll_seconds`, or once `batch_size` rows await marking, and at stop. No transaction is held open across the
network, and no statement needs a transaction block of its own. A publish that reached the stream but whose row was
not marked (a crash in between) is published again by the next relay's read and dropped by the stream's duplicate
window, since the message id is the event id (so is a row a late hand-over repeats after a read sent it).

The publishes are plain NATS publishes with a reply subject under one inbox the relay subscribes to once
(`<inbox>.<flush>.<row>`, `shared.relay_acks`), which is what JetStream's asynchronous publish does; a flush then
counts its acks instead of keeping a future, a semaphore slot and a callback for every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa
from nats.aio.client import Client
from nats.js.api import Header
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.background import PollingLoop
from shared.inbox_outbox import InboxOutbox, OutboxRow
from shared.relay_acks import Acks
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
        self._handed: list[OutboxRow] = []  # committed, handed over by their unit of work, not published yet
        self._next: int | None = None  # where a handed-over row must carry on from to go out unread (None: read)
        self._must_read = True  # rows may be committed that only a read finds
        self._last_read = float("-inf")  # time.monotonic() of the last read that drained the outbox
        self._nats = nats
        self._acks = Acks()
        self._subjects = subjects
        self._lock_key = zlib.crc32(f"safeguard-relay:{schema}".encode())
        self._lock_connection: AsyncConnection | None = None
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._publish_timeout = publish_timeout
        self._loop = PollingLoop(self._step, name="outbox-relay", poll_seconds=poll_seconds)

    def wake(self) -> None:
        """Read the outbox soon: rows were committed that nobody handed over."""
        self._must_read = True
        self._loop.wake()

    def hand_over(self, rows: Sequence[OutboxRow]) -> None:
        """Publish these committed rows soon, from memory if nothing unknown comes before them."""
        if len(self._handed) >= 4 * self._batch_size:  # nobody flushing (a stopped relay): the read finds them
            self._handed.clear()
            self._must_read = True
        self._handed.extend(rows)
        self._loop.wake()

    async def flush(self) -> int:
        """Read and publish every pending row, if this instance is the schema's relay; returns how many went out."""
        self._must_read = True
        return await self._step()

    async def _step(self) -> int:
        """Publish what was handed over, and read the outbox when a read is due (see the module's docstring)."""
        if not await self._lead():
            self._handed.clear()  # the schema's relay (in another process) reads them
            return 0
        try:
            published = await self._publish_handed()
            if self._read_due():
                published += await self._read_all()
                published += await self._publish_handed()  # handed over while the read was under way
            return published
        except Exception:
            # Whatever was handed over is committed: the read finds it once the failure has passed.
            self._handed.clear()
            self._next = None
            self._must_read = True
            await self._resign()  # the lock's connection may be gone too; take the lock afresh next time
            raise

    def _read_due(self) -> bool:
        return (
            self._must_read
            or self._next is None
            or len(self._unmarked) >= self._batch_size
            or time.monotonic() - self._last_read >= self._poll_seconds
        )

    async def _publish_handed(self) -> int:
        """Publish the handed-over rows that carry on from `_next` (and any that come late, below it); a gap before
        one calls for a read, which finds it and whatever the gap holds."""
        if not self._handed or self._must_read or self._next is None:
            return 0
        handed, self._handed = sorted(self._handed, key=lambda row: row.position), []
        published = set(self._unmarked) if handed[0].position < self._next else set()
        rows = []
        for row in handed:
            if row.position == self._next:
                self._next += 1
            elif row.position > self._next:
                self._must_read = True  # a gap: rows not handed over, or a position no row kept
                break
            elif row.position in published:
                continue  # a read sent it before its unit of work handed it over
            rows.append(row)  # in order, or late (committed after rows positioned after it were sent)
        return await self._publish(rows)

    async def _read_all(self) -> int:
        """Publish every committed row not marked yet, a batch per statement, in position order."""
        self._must_read = False
        self._handed.clear()  # committed before this read began: it finds them
        published = 0
        while True:
            with self._marking() as marked:
                async with self._autocommit.connect() as connection:
                    result = await connection.execute(self._read, {"marked": marked, "limit": self._batch_size})
                    rows = [OutboxRow(*row) for row in result]
            published += await self._publish(rows)
            if rows:
                self._next = max(self._next or 0, rows[-1].position + 1)
            if len(rows) < self._batch_size:
                self._last_read = time.monotonic()
                return published

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

    async def _publish(self, rows: Sequence[OutboxRow]) -> int:
        """Publish `rows` in order, all in flight at once, then await the acks; raises unless every one is stored."""
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
