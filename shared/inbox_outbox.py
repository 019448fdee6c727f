"""The inbox (one row per consumed event) and outbox (events to publish) every service keeps.

Both live in the service's own schema and are written in the same transaction as the state change, so a
redelivered event is skipped and a committed event is always published, even after a crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.envelope import Event
from shared.migrations import json_as_jsonb, json_as_text


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A committed outbox row as the relay publishes it: read back, or handed over by the unit of work that wrote it."""

    position: int
    event_id: str
    subject_school: str
    event_type: str
    body: str
    traceparent: str | None


def written_rows(returned: Iterable[Any], parameters: Mapping[str, Any]) -> list[OutboxRow]:
    """The outbox rows a statement wrote, in position order: `returned` are the (position, event_id) pairs of its
    outbox insert (`InboxOutbox.enqueue_from_sql`'s RETURNING), `parameters` the arrays it was given (event_ids,
    schools, types, bodies, traceparents: one entry per event, None where an entry has no event)."""
    index = {event_id: n for n, event_id in enumerate(parameters["event_ids"]) if event_id is not None}
    rows = []
    for position, event_id in returned:
        n = index[event_id]
        rows.append(
            OutboxRow(
                position,
                str(event_id),
                parameters["schools"][n],
                parameters["types"][n],
                parameters["bodies"][n],
                parameters["traceparents"][n],
            )
        )
    rows.sort(key=lambda row: row.position)
    return rows


def outbox_parameters(events: Sequence[Event[Any] | None]) -> dict[str, list[Any]]:
    """The outbox columns of `events` as arrays (each serialised once), for an unnest insert and `written_rows`; None
    in every column where an entry has no event."""
    return {
        "event_ids": [event.event_id if event else None for event in events],
        "schools": [event.school_id if event else None for event in events],
        "types": [event.type if event else None for event in events],
        "bodies": [event.model_dump_json() if event else None for event in events],
        "traceparents": [event.traceparent if event else None for event in events],
    }


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
        # The event's JSON text exactly as the relay publishes it: stored as it comes, never parsed or re-serialised.
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("traceparent", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("outbox_unpublished", "position", postgresql_where=sa.text("published_at is null")),
    )


def create_inbox_outbox(schema: str) -> None:
    """Alembic operations creating both tables in `schema` (used by each service's first migration; the body is
    JSONB here, as it was then: `outbox_body_as_text` makes it text later)."""
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


def outbox_body_as_text(schema: str) -> None:
    """Alembic operation storing the outbox's body as the JSON text the relay publishes (was JSONB: parsed on every
    insert, re-serialised on every read). A pending row keeps its JSON, in JSONB's spelling."""
    json_as_text("outbox", "body", schema=schema)


def outbox_body_as_jsonb(schema: str) -> None:
    """The reverse of `outbox_body_as_text`."""
    json_as_jsonb("outbox", "body", schema=schema)


class InboxOutbox:
    """Queries on one schema's inbox and outbox.

    Both run once per batch, so they are written as one statement over arrays (`unnest`): a fixed SQL text that
    PostgreSQL prepares once and SQLAlchemy never recompiles, whatever the batch's size.
    """

    def __init__(self, schema: str) -> None:
        metadata = sa.MetaData(schema=schema)
        self.inbox = inbox_table(metadata)
        self.outbox = outbox_table(metadata)
        self._schema = schema
        self._claim = sa.text(self.claim_sql(":consumer", ":event_ids"))
        self._enqueue = sa.text(
            f'insert into "{schema}".outbox (event_id, subject_school, event_type, body, traceparent) '
            "select * from unnest(cast(:event_ids as uuid[]), cast(:schools as text[]), cast(:types as text[]), "
            "cast(:bodies as text[]), cast(:traceparents as text[])) "
            "on conflict do nothing returning position, event_id"
        )

    def enqueue_from_sql(self, source: str) -> str:
        """SQL (for a `with` clause) putting in the outbox each row of `source`, an earlier CTE with the columns
        event_id, school_id, event_type, body (the JSON text, as published) and traceparent: for a statement that
        records changes and publishes them at once (its CTE returns a row for each change made, none for one that
        was not). It returns each row's position and event_id: the statement passes them on (`written_rows`), so its
        unit of work hands the rows to the relay, which then publishes them without reading them back."""
        return (
            f'insert into "{self._schema}".outbox (event_id, subject_school, event_type, body, traceparent) '
            f"select event_id, school_id, event_type, body, traceparent from {source} on conflict do nothing "
            "returning position, event_id"
        )

    def claim_sql(self, consumer: str = ":claim_consumer", event_ids: str = ":claim_ids") -> str:
        """SQL (for a `with` clause: `claimed as (...)`) claiming events for a consumer inside a statement that
        handles them: it returns the ids not claimed before, and the statement joins each write to them, so a
        redelivered event changes nothing. `consumer` and `event_ids` are the statement's parameters (text and
        uuid[]; `$1`-style for asyncpg)."""
        return (
            f'insert into "{self._schema}".inbox (consumer, event_id) '
            f"select {consumer}, unnest(cast({event_ids} as uuid[])) on conflict do nothing returning event_id"
        )

    async def claim(self, session: AsyncSession, *, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record that `consumer` handles these events (one statement); returns those it had not handled before."""
        if not event_ids:
            return set()
        result = await session.execute(self._claim, {"consumer": consumer, "event_ids": list(dict.fromkeys(event_ids))})
        return set(result.scalars())

    async def enqueue(self, session: AsyncSession, events: Iterable[Event[Any]]) -> list[OutboxRow]:
        """Add events to the outbox in the caller's transaction (one statement); none is added twice. Returns the
        rows it added (an event already in the outbox is not among them)."""
        batch = list(events)
        if not batch:
            return []
        parameters = outbox_parameters(batch)
        returned = await session.execute(self._enqueue, parameters)
        return written_rows(returned, parameters)
