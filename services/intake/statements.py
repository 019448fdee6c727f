"""Intake's two hot statements, each for a group of reports at once (shared.coalesce groups concurrent ones).

Both are single statements, atomic alone, run without a transaction block: one round trip for a whole group.
"""

from __future__ import annotations

import sqlalchemy as sa

from shared.inbox_outbox import InboxOutbox

SCHEMA = "intake"
OUTBOX = InboxOutbox(SCHEMA)

# Keep raw inputs as received; one whose idempotency key was seen before (or earlier in this group) is not kept
# again, and does not come back: its caller reads the earlier one.
KEEP_RAW_ALL = sa.text(
    f"""
    insert into {SCHEMA}.raw_inputs
      (raw_input_id, school_id, channel, content_type, body, idempotency_key, received_at, status)
    select raw_input_id, school_id, channel, content_type, body, idempotency_key, received_at, 'received'
    from unnest(cast(:ids as uuid[]), cast(:schools as text[]), cast(:channels as text[]),
                cast(:content_types as text[]), cast(:bodies as bytea[]), cast(:keys as text[]),
                cast(:received as timestamptz[]))
      as kept(raw_input_id, school_id, channel, content_type, body, idempotency_key, received_at)
    on conflict do nothing
    returning raw_input_id
    """
)

EARLIER_RAW = sa.text(
    f"""
    select raw_input_id, status, reference, rejection_reason from {SCHEMA}.raw_inputs
    where school_id = :school_id and channel = :channel and idempotency_key = :idempotency_key
    """
)

# Each concern, the link from its raw input, its receipt and its outbox row; a concern whose reference is taken
# (before, or earlier in this group) writes nothing at all and does not come back. Each accepted concern comes back
# with its outbox row's position, for the relay (`written_rows`).
ACCEPT_ALL = sa.text(
    f"""
    with incoming as (
      select * from unnest(
        cast(:references as text[]), cast(:schools as text[]), cast(:raw_ids as uuid[]), cast(:event_ids as uuid[]),
        cast(:received as timestamptz[]), cast(:receipts as text[]), cast(:types as text[]), cast(:bodies as text[]),
        cast(:traceparents as text[])
      ) as i(reference, school_id, raw_input_id, event_id, received_at, receipt_sha256, event_type, body, traceparent)
    ), concern as (
      -- The concern's payload is the event's, as published (serialised once; parsed here, the outbox keeps the text).
      insert into {SCHEMA}.concerns (reference, school_id, raw_input_id, event_id, received_at, payload)
      select reference, school_id, raw_input_id, event_id, received_at, cast(body as jsonb) -> 'payload' from incoming
      on conflict (reference) do nothing
      returning reference, event_id
    ), accepted as (
      select incoming.* from incoming join concern using (reference, event_id)
    ), linked as (
      update {SCHEMA}.raw_inputs set status = 'accepted', reference = accepted.reference
      from accepted where raw_inputs.raw_input_id = accepted.raw_input_id
      returning accepted.event_id
    ), receipt as (
      insert into {SCHEMA}.receipts (reference, school_id, secret_sha256, status, updated_at)
      select reference, school_id, receipt_sha256, 'received', received_at
      from accepted where receipt_sha256 is not null
      on conflict (reference) do update set secret_sha256 = excluded.secret_sha256
    ), published as (
      {OUTBOX.enqueue_from_sql("accepted")}
    )
    select linked.event_id, published.position from linked left join published using (event_id)
    """
)
