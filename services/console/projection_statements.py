"""The projection's batch statements: fixed SQL over array parameters, one statement text whatever a batch's size.

A batch costs two of them (plus the rare duties' own): KEEP stores what the batch brings and reads back the
touched cases' stored events; REFRESH writes the refolded cases' summary rows and their open debrief actions.
Both go straight to asyncpg on the session's connection, inside its transaction: SQLAlchemy's execution of a
text statement cost more CPU than asyncpg's own (about 0.2 ms a statement, several times a batch's work).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.store import SCHEMA


async def run(session: AsyncSession, statement: str, *arguments: Any) -> list[asyncpg.Record]:
    """`statement`'s rows, run by asyncpg on the session's connection, in its transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return await driver.fetch(statement, *arguments)


# $1-$5: the batch's concerns (event id, school, reference, body, reporter); $6-$11: chronology entries (event
# id, case, school, type, occurred at, body); $12: the touched cases.
# The batch's concerns and chronology entries (an event already kept stays as it is), the reporter of a case
# projected before its concern arrived, then the touched cases' own events as they were before this statement:
# every statement of a WITH sees the same snapshot, so the batch's new entries are not among them (the caller
# has those in hand, and appends the ones not read back, in batch order, as their positions would have it).
KEEP = f"""
    with kept_concerns as (
      insert into {SCHEMA}.concerns (event_id, school_id, reference, body)
      select * from unnest(cast($1 as text[]), cast($2 as text[]),
                           cast($3 as text[]), cast($4 as jsonb[]))
      on conflict do nothing
    ),
    late_reporters as (
      update {SCHEMA}.cases set reporter_person_id = late.reporter, change = default
      from unnest(cast($1 as text[]), cast($5 as text[])) as late(concern_event_id, reporter)
      where cases.concern_event_id = late.concern_event_id
    ),
    kept_entries as (
      insert into {SCHEMA}.case_entries (event_id, case_id, school_id, event_type, occurred_at, body)
      select * from unnest(cast($6 as uuid[]), cast($7 as text[]), cast($8 as text[]),
                           cast($9 as text[]), cast($10 as timestamptz[]),
                           cast($11 as jsonb[]))
      on conflict do nothing
    )
    select case_id, cast(event_id as text), cast(body as text) from {SCHEMA}.case_entries
    where case_id = any(cast($12 as text[])) and event_type like 'case.%'
    order by position
    """

# $1: the summary rows as a JSON array; $2-$6: the open debrief actions (case, action, school, owner, due on).
# Each refolded case's summary row (its reporter read from the concerns kept, this batch's included), and its
# open debrief actions exactly as the fold has them: the ones no longer open go, the rest are upserted.
REFRESH = f"""
    with summary as (
      select * from jsonb_to_recordset(cast($1 as jsonb)) as row(
        case_id text, school_id text, reference text, concern_event_id text, kind text, case_type text, urgency text,
        status text, acknowledged_by text, acknowledge_due timestamptz, outcome text, version integer,
        subject_person_ids text[], recipient_person_ids text[], opened_at timestamptz, updated_at timestamptz)
    ),
    open_now as (
      select * from unnest(cast($2 as text[]), cast($3 as text[]),
                           cast($4 as text[]), cast($5 as text[]), cast($6 as date[]))
        as open_now(case_id, action_id, school_id, owner, due_on)
    ),
    done as (
      delete from {SCHEMA}.debrief_actions kept
      where kept.case_id in (select case_id from summary)
        and not exists (select from open_now where open_now.case_id = kept.case_id
                                               and open_now.action_id = kept.action_id)
    ),
    actions as (
      insert into {SCHEMA}.debrief_actions (case_id, action_id, school_id, owner, due_on)
      select * from open_now
      on conflict (case_id, action_id) do update set owner = excluded.owner, due_on = excluded.due_on
    )
    insert into {SCHEMA}.cases (
      case_id, school_id, reference, concern_event_id, kind, case_type, urgency, status, acknowledged_by,
      acknowledge_due, outcome, version, subject_person_ids, recipient_person_ids, reporter_person_id, opened_at,
      updated_at)
    select case_id, school_id, reference, concern_event_id, kind, case_type, urgency, status, acknowledged_by,
           acknowledge_due, outcome, version, subject_person_ids, recipient_person_ids,
           (select concern.body -> 'payload' -> 'reporter' ->> 'person_id' from {SCHEMA}.concerns concern
            where concern.event_id = summary.concern_event_id),
           opened_at, updated_at
    from summary
    on conflict (case_id) do update set
      school_id = excluded.school_id, reference = excluded.reference, concern_event_id = excluded.concern_event_id,
      kind = excluded.kind, case_type = excluded.case_type, urgency = excluded.urgency, status = excluded.status,
      acknowledged_by = excluded.acknowledged_by, acknowledge_due = excluded.acknowledge_due,
      outcome = excluded.outcome, version = excluded.version, subject_person_ids = excluded.subject_person_ids,
      recipient_person_ids = excluded.recipient_person_ids, reporter_person_id = excluded.reporter_person_id,
      opened_at = excluded.opened_at, updated_at = excluded.updated_at, change = default
    """
