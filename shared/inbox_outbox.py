"""The inbox (one row per consumed event) and outbox (events to publish) every service keeps.

Both live in the service's own schema and are written in the same transaction as the state change, so a
redelivered event is skipped and a committed event is always published, even after a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.envelope import Event


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("subject_school", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("traceparent", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("outbox_unpublished", "position", postgresql_where=sa.text("published_at is null")),
    )


def create_inbox_outbox(schema: str) -> None:
    """Alembic operations creating both tables in `schema` (used by each service's first migration)."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_table(
        "outbox",
        sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("subject_school", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("traceparent", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["position"],
        schema=schema,
        postgresql_where=sa.text("published_at is null"),
    )


class InboxOutbox:
    """Queries on one schema's inbox and outbox."""

    def __init__(self, schema: str) -> None:
        metadata = sa.MetaData(schema=schema)
        self.inbox = inbox_table(metadata)
        self.outbox = outbox_table(metadata)

    async def claim(self, session: AsyncSession, *, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record that `consumer` handles these events (one statement); returns those it had not handled before."""
        if not event_ids:
            return set()
        result = await session.execute(
            insert(self.inbox)
            .values([{"consumer": consumer, "event_id": event_id} for event_id in dict.fromkeys(event_ids)])
            .on_conflict_do_nothing()
            .returning(self.inbox.c.event_id)
        )
        return set(result.scalars())

    async def enqueue(self, session: AsyncSession, events: Iterable[Event[Any]]) -> int:
        """Add events to the outbox in the caller's transaction; an event already there is not added twice."""
        rows = [
            {
                "event_id": event.event_id,
                "subject_school": event.school_id,
                "event_type": event.type,
                "body": event.model_dump(mode="json"),
                "traceparent": event.traceparent,
            }
            for event in events
        ]
        if not rows:
            return 0
        await session.execute(insert(self.outbox).values(rows).on_conflict_do_nothing())
        return len(rows)
