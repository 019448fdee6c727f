"""The audit schema: the ledger, the data keys that seal its personal fields, and their queries."""

from __future__ import annotations

import hashlib
import logging
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import GENESIS, ChainEntry, canonical_json, entry_bytes, stored_entry
from services.audit.personal import Located
from shared.contracts.envelope import Event
from shared.tracing import trace_id_of

log = logging.getLogger(__name__)

SCHEMA = "audit"
metadata = sa.MetaData(schema=SCHEMA)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("school_sequence", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("aggregate_id", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Uuid, nullable=False),
    sa.Column("trace_id", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("previous_hash", sa.Text, nullable=False),
    sa.Column("entry_hash", sa.Text, nullable=False),
    sa.Column("appended_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("stream_sequence", sa.BigInteger),
    # Exactly the bytes `entry_hash` is the SHA-256 of (previous hash, sequence, the event's canonical JSON): the
    # record itself, and its only copy of the event. Verify hashes these and every reader decodes the event from
    # them (ad-hoc SQL through the `audit.ledger_events` view, migration 0005).
    sa.Column("entry", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("school_id", "school_sequence"),  # the chain: appends, verify, replay, chronology
    # who-read (services/audit/reads.py): a case's record.viewed entries, without a pass over the whole ledger
    sa.Index("ledger_views", "aggregate_id", postgresql_where=sa.text("event_type = 'record.viewed'")),
)

# Each school's key (wrapped by the KEK) and its subjects' data keys (wrapped by the school's key). Never updated;
# deleting a row is crypto-shredding (services/audit/keyring.py).
data_keys = sa.Table(
    "data_keys",
    metadata,
    sa.Column("school_id", sa.Text, primary_key=True),
    sa.Column("key_id", sa.Text, primary_key=True),  # school | record | person:<id> | case:<id> | reporter:<hash>
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("wrapped_by", sa.Text, nullable=False),  # the KEK's id for the school key; "school" for the others
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def _append_statement(table: sa.Table, names: Sequence[str]) -> str:
    """One INSERT of a whole batch: each column's values as one array ($1… in `names` order), zipped into rows.

    A single statement with one parameter per column, instead of a parameter set per row: the driver encodes
    each array in one go, so a batch costs audit little more than its rows' bytes. The event is in the row once,
    as its entry bytes: PostgreSQL parses no JSON on the way in.
    """
    arrays = ", ".join(
        f"${number}::{table.c[name].type.compile(dialect=postgresql.dialect())}[]"
        for number, name in enumerate(names, start=1)
    )
    return (
        f"insert into {table.fullname} ({', '.join(names)}) "
        f"select {', '.join(names)} from unnest({arrays}) as appended({', '.join(names)})"
    )


# Every column an append sends (`position` and `appended_at` are the database's own).
_APPENDED = [column.name for column in ledger.columns if column.name not in {"position", "appended_at"}]
_APPEND = _append_statement(ledger, _APPENDED)
# Under the school's lock, in one round trip: the chain's head, which of the batch's events ($2) the ledger holds
# already (the ledger is audit's inbox: its `event_id` is unique), and the data keys the sealer asks for ($3).
_READ = (
    "select head.school_sequence, head.entry_hash, head.stream_sequence, "
    # By event id alone (its unique index: a few probes). A `school_id = $1` here lets the planner AND in the chain's
    # index, a pass over the whole school's entries per batch; the school is compared in Python instead.
    "held.chained, held.chained_in, "
    "named.key_ids, named.wrapped, named.wrapped_by from (select) as one "
    "left join lateral (select school_sequence, entry_hash, stream_sequence "
    f"from {ledger.fullname} where school_id = $1 order by school_sequence desc limit 1) as head on true "
    "cross join lateral (select array_agg(event_id) as chained, array_agg(school_id) as chained_in "
    f"from {ledger.fullname} where event_id = any($2::uuid[])) as held "
    "cross join lateral (select array_agg(key_id) as key_ids, array_agg(wrapped) as wrapped, "
    f"array_agg(wrapped_by) as wrapped_by from {data_keys.fullname} where school_id = $1 "
    "and key_id = any($3::text[])) as named"
)


class KeyRow(NamedTuple):
    """A row of `audit.data_keys` as read: the key's name, its wrapped bytes and what wrapped them."""

    key_id: str
    wrapped: bytes
    wrapped_by: str


@dataclass(frozen=True)
class SealingPlan:
    """A batch's sealing worked out before its keys are read: the school, its documents, each one's personal
    fields, and the keys to read (the school's key first; empty when there is nothing to seal)."""

    school_id: str
    documents: list[dict[str, Any]]
    found: list[list[Located]]
    key_ids: list[str]


class Sealer(Protocol):
    """Seals the personal fields of ledger documents before they are hashed (KeyRing; a fake seals nothing)."""

    def plan(self, *, school_id: str, documents: list[dict[str, Any]]) -> SealingPlan: ...

    async def seal(self, session: AsyncSession, plan: SealingPlan, *, keys: Iterable[KeyRow]) -> None: ...


async def lock_school(session: AsyncSession, *, school_id: str) -> None:
    """One writer per school's chain and keys until the transaction ends (appends and shredding take it)."""
    await session.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": school_lock_key(school_id)})


def school_lock_key(school_id: str) -> int:
    """The advisory lock that makes one writer per school (its chain and its keys)."""
    return zlib.crc32(f"ledger:{school_id}".encode())


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, in its transaction (bulk reads skip SQLAlchemy's rows)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


async def transaction_driver(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, its transaction begun (SQLAlchemy begins it with its first statement)."""
    driver = await driver_connection(session)
    if not driver.is_in_transaction():
        await session.execute(sa.text("select 1"))  # what follows runs in that one transaction
    return driver


async def locked_driver(session: AsyncSession, *, school_id: str) -> asyncpg.Connection:
    """`lock_school`, then the session's asyncpg connection for the rest of the transaction's statements.

    The append path's statements are few and fixed, and go straight to the driver: through SQLAlchemy each cost
    audit ten times the CPU (statement construction, cache keys, result wrapping). They run in the session's
    transaction, which SQLAlchemy begins lazily with its first statement: until it has, the lock goes through
    SQLAlchemy (so it begins it); a statement sent to the driver before that would run in a transaction of its
    own, and the lock would end with it.
    """
    driver = await driver_connection(session)
    if driver.is_in_transaction():
        await driver.execute("select pg_advisory_xact_lock($1)", school_lock_key(school_id))
    else:
        await lock_school(session, school_id=school_id)
    return driver


class Ledger(Protocol):
    """What audit asks of its record (`SqlLedger`; a fake in tests/support/fakes.py)."""

    async def append(
        self,
        session: AsyncSession,
        events: Sequence[Event[Any]],
        *,
        stream_sequences: Mapping[uuid.UUID, int] | None = None,
    ) -> dict[str, int]: ...

    async def chain(self, session: AsyncSession, *, school_id: str) -> list[ChainEntry]: ...


class SqlLedger:
    """Appends events to the per-school hash chains, their personal fields sealed first (hashes cover the seal)."""

    def __init__(self, *, sealer: Sealer) -> None:
        self.sealer = sealer

    async def append(
        self,
        session: AsyncSession,
        events: Sequence[Event[Any]],
        *,
        stream_sequences: Mapping[uuid.UUID, int] | None = None,
    ) -> dict[str, int]:
        """Append events at the end of their schools' chains, in stream order; returns each school's new head.

        Per school: one lock (one writer per chain, whichever audit instance holds the batch), one statement
        reading the chain's head, the events it holds already and the data keys the batch names (a statement more
        when the sealer stores new keys), one insert of the batch. An event the ledger holds already (a redelivery)
        is skipped: the ledger is audit's inbox, each event id once. Events with a stream sequence are chained in
        that order (a batch retried or redelivered keeps it) and the sequence is recorded, so the chain's order can
        be checked against the stream's.
        """
        positions = stream_sequences or {}
        by_school: dict[str, list[Event[Any]]] = {}
        for event in {event.event_id: event for event in events}.values():  # each id once
            by_school.setdefault(event.school_id, []).append(event)
        heads: dict[str, int] = {}
        for school_id in sorted(by_school):  # a fixed order, so two instances never wait on each other's locks
            ordered = sorted(by_school[school_id], key=lambda event: positions.get(event.event_id, 0))
            heads[school_id] = await self._append_school(session, school_id, ordered, positions)
        return heads

    async def _append_school(
        self, session: AsyncSession, school_id: str, events: list[Event[Any]], positions: Mapping[uuid.UUID, int]
    ) -> int:
        documents = [event.model_dump(mode="json") for event in events]
        plan = self.sealer.plan(school_id=school_id, documents=documents)
        driver = await locked_driver(session, school_id=school_id)
        read = await driver.fetchrow(_READ, school_id, [event.event_id for event in events], plan.key_ids)
        sequence, previous = read["school_sequence"] or 0, read["entry_hash"] or GENESIS
        # A redelivery: what the ledger holds is not appended again. An id chained under another school is none: its
        # insert is refused (the ledger's unique event id), so it is dead-lettered with that reason, not dropped.
        held = zip(read["chained"] or (), read["chained_in"] or (), strict=True)
        if chained := {event_id for event_id, school in held if school == school_id}:
            log.info("ledger %s: %d event(s) already chained, skipped", school_id, len(chained))
            kept = [at for at, event in enumerate(events) if event.event_id not in chained]
            if not kept:
                return int(sequence)
            events, documents = [events[at] for at in kept], [documents[at] for at in kept]
            plan = self.sealer.plan(school_id=school_id, documents=documents)  # its keys are among those read
        first = positions.get(events[0].event_id)
        last_stream = read["stream_sequence"]
        if last_stream is not None and first is not None and first < last_stream:
            # An earlier stream message arrives after a later one was chained (a redelivery, or two audit instances
            # holding interleaved batches). The chain cannot be reordered: it records the arrival order, and the
            # stream sequences beside it show the departure (docs/audit.md, "Stream order").
            log.warning(
                "ledger %s: stream message %d chained after %d (out of stream order)",
                school_id,
                first,
                last_stream,
            )
        keys = zip(read["key_ids"] or (), read["wrapped"] or (), read["wrapped_by"] or (), strict=True)
        await self.sealer.seal(session, plan, keys=[KeyRow(*key) for key in keys])
        columns: dict[str, list[Any]] = {name: [] for name in _APPENDED}
        for event, document in zip(events, documents, strict=True):
            sequence += 1
            canonical = canonical_json(document)
            entry = entry_bytes(previous, sequence, canonical)
            digest = hashlib.sha256(entry).hexdigest()
            columns["school_sequence"].append(sequence)
            columns["event_id"].append(event.event_id)
            columns["event_type"].append(event.type)
            columns["aggregate_id"].append(event.aggregate_id)
            columns["correlation_id"].append(event.correlation_id)
            columns["trace_id"].append(trace_id_of(event.traceparent))
            columns["occurred_at"].append(event.occurred_at)
            columns["previous_hash"].append(previous)
            columns["entry_hash"].append(digest)
            columns["stream_sequence"].append(positions.get(event.event_id))
            columns["entry"].append(entry)
            previous = digest
        columns["school_id"] = [school_id] * len(events)
        await driver.execute(_APPEND, *(columns[name] for name in _APPENDED))
        return int(sequence)

    async def chain(self, session: AsyncSession, *, school_id: str) -> list[ChainEntry]:
        """The school's whole chain in order, for verification."""
        rows = await session.execute(
            sa.select(ledger.c.school_sequence, ledger.c.entry, ledger.c.entry_hash)
            .where(ledger.c.school_id == school_id)
            .order_by(ledger.c.school_sequence)
        )
        return [stored_entry(r.school_sequence, r.entry, r.entry_hash) for r in rows]
