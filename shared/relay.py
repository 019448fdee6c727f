"""Publishes a service's outbox to JetStream, in order, marking each row once the stream has it.

Runs after every commit (woken) and on a timer (so events committed just before a crash still go out).
Several instances may run: rows are claimed with `FOR UPDATE SKIP LOCKED`. A publish that reaches the stream
but whose row update is lost is published again after restart and dropped by the stream's duplicate window.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.background import PollingLoop
from shared.db import transaction
from shared.inbox_outbox import InboxOutbox
from shared.messaging import publish_wire_event
from shared.subjects import Subjects

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves committed outbox rows onto the event stream."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        tables: InboxOutbox,
        broker: NatsBroker,
        subjects: Subjects,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
    ) -> None:
        self._sessions = sessions
        self._outbox = tables.outbox
        self._broker = broker
        self._subjects = subjects
        self._batch_size = batch_size
        self._loop = PollingLoop(self.flush, name="outbox-relay", poll_seconds=poll_seconds)

    def wake(self) -> None:
        """Ask for a flush soon (after a commit added rows)."""
        self._loop.wake()

    async def flush(self) -> int:
        """Publish every pending row; returns how many were published."""
        published = 0
        while True:
            batch = await self._flush_batch()
            published += batch
            if batch < self._batch_size:
                return published

    async def _flush_batch(self) -> int:
        outbox = self._outbox
        async with transaction(self._sessions) as session:
            rows = (
                await session.execute(
                    sa.select(
                        outbox.c.position,
                        outbox.c.event_id,
                        outbox.c.subject_school,
                        outbox.c.event_type,
                        outbox.c.body,
                        outbox.c.traceparent,
                    )
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.position)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await publish_wire_event(
                    self._broker,
                    subject=self._subjects.event(school_id=row.subject_school, event_type=row.event_type),
                    body=row.body,
                    event_id=str(row.event_id),
                    traceparent=row.traceparent,
                    stream=self._subjects.stream,
                )
            if rows:
                await session.execute(
                    sa.update(outbox)
                    .where(outbox.c.position.in_([row.position for row in rows]))
                    .values(published_at=sa.func.now())
                )
        return len(rows)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
