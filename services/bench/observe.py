"""What the bench reads back, as an outside observer: the services' tables and the event stream.

Reads only what outlives the lead's rewrite of the plumbing: routing.cases, notifications.deliveries,
audit.ledger (its correlation id and `appended_at`; the event as JSON through the `audit.ledger_events` view, which
cuts it from the entry bytes) and the events on the stream.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.bench.figures import summarise_ms
from services.bench.load import Reply

NOTIFICATION_REQUESTED = "notification.requested"
CONCERN_RECEIVED = "concern.received"
NEAR_END_EVENTS = 200  # events still to audit (or deliveries to send) below which the bench looks more often

# Polled while the pipeline drains (`Progress.next_reading_in`), and its work counts as PostgreSQL's: one pass over
# the ledger for both of its counts.
PROGRESS_SQL = """
select
  (select count(*) from routing.cases) as cases,
  ledger.audited,
  ledger.requested,
  (select count(*) from notifications.deliveries where status in ('sent', 'failed')) as sent
from (
  select count(*) as audited, count(*) filter (where event_type = 'notification.requested') as requested
  from audit.ledger
) as ledger
"""

# Epoch seconds from the database, so they compare with the client's time.time() (the same machine clock).
TIMINGS_SQL = """
with received as (
  select event->'payload'->>'reference' as reference, correlation_id, appended_at
  from audit.ledger_events
  where event_type = 'concern.received' and event->'payload'->>'reference' = any($1::text[])
),
last_audit as (select correlation_id, max(appended_at) as at from audit.ledger group by correlation_id),
channel as (select correlation_id, max(delivered_at) as at from notifications.deliveries group by correlation_id)
select received.reference,
       extract(epoch from received.appended_at)::float8 as audit_received,
       extract(epoch from last_audit.at)::float8 as audit_last,
       extract(epoch from channel.at)::float8 as channel
from received
left join last_audit using (correlation_id)
left join channel using (correlation_id)
"""


@dataclass(frozen=True)
class Progress:
    """Counts that tell whether the pipeline has gone quiet."""

    cases: int = 0
    audited: int = 0
    requested: int = 0
    sent: int = 0
    on_stream: int = 0

    def settled(self, *, expected_cases: int) -> bool:
        """Every concern has its case, every event on the stream is audited, every notification sent."""
        return (
            self.cases >= expected_cases
            and self.audited == self.on_stream
            and self.sent == self.requested
            and (self.requested > 0 or expected_cases == 0)
        )

    def next_reading_in(self, *, expected_cases: int) -> float:
        """Seconds until the next reading. A reading costs PostgreSQL a pass over the ledger, the cases and the
        deliveries, counted as the system's work; while much is still to do, one a second is enough (the figures
        come from the database's timestamps, not from when the bench looked), and four a second near the end."""
        near = (
            self.cases >= expected_cases
            and self.on_stream - self.audited <= NEAR_END_EVENTS
            and self.requested - self.sent <= NEAR_END_EVENTS
        )
        return 0.25 if near else 1.0


@dataclass(frozen=True)
class Timings:
    """When (epoch seconds, database and notifications clocks) one concern reached each milestone."""

    audit_received: float | None
    audit_last: float | None
    channel: float | None


@dataclass
class StreamEvents:
    """The events on the stream, by correlation id."""

    correlation_of: dict[str, str] = field(default_factory=dict)  # concern reference -> correlation id
    event_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    requested: Counter[str] = field(default_factory=Counter)
    total: int = 0


async def progress(connection: asyncpg.Connection, js: JetStreamContext, *, stream: str) -> Progress:
    """The counts now (zero while the services are still creating their tables)."""
    on_stream = (await js.stream_info(stream)).state.messages
    try:
        row = await connection.fetchrow(PROGRESS_SQL)
    except asyncpg.UndefinedTableError:
        return Progress(on_stream=on_stream)
    assert row is not None
    return Progress(row["cases"], row["audited"], row["requested"], row["sent"], on_stream)


async def timings(connection: asyncpg.Connection, references: Iterable[str]) -> dict[str, Timings]:
    """Milestone times of each concern that audit has recorded."""
    rows = await connection.fetch(TIMINGS_SQL, list(references))
    return {row["reference"]: Timings(row["audit_received"], row["audit_last"], row["channel"]) for row in rows}


def latencies(replies: Sequence[Reply], reached: dict[str, Timings]) -> dict[str, dict[str, float | int | None]]:
    """Intake's reply time, and from the reply to each milestone, summarised over the concerns that reached it."""
    reply_s = [reply.replied_at - reply.sent_at for reply in replies]
    since_reply: dict[str, list[float]] = {"to_channel_ms": [], "to_audit_received_ms": [], "to_audit_last_ms": []}
    for reply in replies:
        timing = reached.get(reply.reference)
        if timing is None:
            continue
        for figure, at in zip(since_reply, (timing.channel, timing.audit_received, timing.audit_last), strict=True):
            if at is not None:
                since_reply[figure].append(at - reply.replied_at)
    return {"intake_reply_ms": summarise_ms(reply_s), **{k: summarise_ms(v) for k, v in since_reply.items()}}


async def read_stream(js: JetStreamContext, *, stream: str, subjects: str, batch: int = 1000) -> StreamEvents:
    """Every event on the stream, read once through an ephemeral consumer that needs no acks."""
    expected = (await js.stream_info(stream)).state.messages
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
    subscription = await js.pull_subscribe(subjects, stream=stream, config=config)
    found = StreamEvents()
    try:
        while found.total < expected:
            try:
                messages = await subscription.fetch(batch, timeout=2.0)
            except nats.errors.TimeoutError:
                break
            for message in messages:
                event = json.loads(message.data)
                correlation = str(event["correlation_id"])
                found.event_ids[correlation].add(str(event["event_id"]))
                if event["type"] == CONCERN_RECEIVED:
                    found.correlation_of[str(event["payload"]["reference"])] = correlation
                elif event["type"] == NOTIFICATION_REQUESTED:
                    found.requested[correlation] += 1
                found.total += 1
    finally:
        await subscription.unsubscribe()
    return found


async def incomplete_concerns(
    connection: asyncpg.Connection, js: JetStreamContext, *, stream: str, subjects: str, references: Iterable[str]
) -> dict[str, list[str]]:
    """Each concern that is not complete, with what it lacks: one case, its notifications sent, every event
    on the stream audited exactly once."""
    events = await read_stream(js, stream=stream, subjects=subjects)
    cases = {row["reference"]: row["n"] for row in await connection.fetch(CASES_SQL)}
    deliveries = {str(row["correlation_id"]): (row["n"], row["sent"]) for row in await connection.fetch(DELIVERIES_SQL)}
    audited: dict[str, list[str]] = defaultdict(list)
    for row in await connection.fetch("select correlation_id, event_id from audit.ledger"):
        audited[str(row["correlation_id"])].append(str(row["event_id"]))
    problems: dict[str, list[str]] = {}
    for reference in references:
        found = concern_problems(
            reference, events=events, cases=cases.get(reference, 0), deliveries=deliveries, audited=audited
        )
        if found:
            problems[reference] = found
    return problems


CASES_SQL = "select reference, count(*) as n from routing.cases group by reference"
DELIVERIES_SQL = """
select correlation_id, count(*) as n, count(*) filter (where status in ('sent', 'failed')) as sent
from notifications.deliveries group by correlation_id
"""


def concern_problems(
    reference: str,
    *,
    events: StreamEvents,
    cases: int,
    deliveries: dict[str, tuple[int, int]],
    audited: dict[str, list[str]],
) -> list[str]:
    """What one concern lacks, in words (empty when it is complete)."""
    correlation = events.correlation_of.get(reference)
    if correlation is None:
        return ["no concern.received on the stream"]
    problems = [] if cases == 1 else [f"{cases} cases"]
    requested = events.requested[correlation]
    claimed, sent = deliveries.get(correlation, (0, 0))
    if requested == 0:
        problems.append("no notification requested")
    if claimed != requested or sent != requested:
        problems.append(f"{sent} of {requested} notifications sent ({claimed} claimed)")
    ledger = audited.get(correlation, [])
    if len(ledger) != len(set(ledger)):
        problems.append("an event audited more than once")
    missing = events.event_ids[correlation] - set(ledger)
    if missing:
        problems.append(f"{len(missing)} of {len(events.event_ids[correlation])} events not audited")
    if set(ledger) - events.event_ids[correlation]:
        problems.append("audited events that are not on the stream")
    return problems
