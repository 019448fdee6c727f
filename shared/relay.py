"""Publishes a service's outbox to JetStream in order, a batch at a time, marking rows once the stream has them.

One relay per schema publishes at a time (a PostgreSQL session advisory lock held on its own connection; another
instance takes over when that connection goes), so the stream receives each service's events in outbox order.
A batch is read with one statement, published asynchronously (every publish in flight at once, then the acks
awaited), and the acknowledged prefix is marked with a second statement: no transaction is held open across the
network, and neither needs a transaction block of its own (each is atomic alone: one round trip each). A publish
that reached the stream but whose row was not marked (a crash in between) is published again and dropped by the
stream's duplicate window, since the message id is the event id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable

import sqlalchemy as sa
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.background import PollingLoop
from shared.inbox_outbox import InboxOutbox
from shared.subjects import Subjects
from shared.tracing import record_batch_spans

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves committed outbox rows onto the event stream."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        tables: InboxOutbox,
        jetstream: Callable[[], JetStreamContext],
        subjects: Subjects,
        schema: str,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        publish_timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = sa.text(
            "select position, event_id, subject_school, event_type, body::text as body, traceparent "
            f'from "{schema}".outbox where published_at is null order by position limit :limit'
        )
        self._mark = sa.text(
            f'update "{schema}".outbox set published_at = now() where position = any(cast(:positions as bigint[]))'
        )
        self._jetstream = jetstream
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

    async def _flush_batch(self) -> int:
        async with self._autocommit.connect() as connection:
            rows = (await connection.execute(self._read, {"limit": self._batch_size})).all()
        if not rows:
            return 0
        started_ns = time.time_ns()
        js = self._jetstream()
        pending = []
        for row in rows:
            headers = {"Nats-Msg-Id": str(row.event_id), "content-type": "application/json"}
            if row.traceparent:
                headers["traceparent"] = row.traceparent
            subject = self._subjects.event(school_id=row.subject_school, event_type=row.event_type)
            pending.append(
                await js.publish_async(subject, row.body.encode(), headers=headers, stream=self._subjects.stream)
            )
        outcomes = await asyncio.wait_for(
            asyncio.gather(*pending, return_exceptions=True), timeout=self._publish_timeout
        )
        acknowledged = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Keep order: nothing after the first failure counts as published; it is sent again next time.
                log.warning("publishing %s failed: %r; will retry", row.event_id, outcome)
                break
            acknowledged.append(row.position)
        record_batch_spans(
            "publish",
            [(row.event_type, row.event_id, row.traceparent) for row in rows[: len(acknowledged)]],
            started_ns=started_ns,
        )
        if acknowledged:
            async with self._autocommit.connect() as connection:
                await connection.execute(self._mark, {"positions": acknowledged})
        if len(acknowledged) < len(rows):
            raise RuntimeError(f"{len(rows) - len(acknowledged)} outbox events not acknowledged by the stream")
        return len(acknowledged)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._resign()
