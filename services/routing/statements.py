"""Routing's batch statements: fixed SQL over array parameters, one statement text whatever a batch's size."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.inbox_outbox import InboxOutbox

SCHEMA = "routing"

OUTBOX = InboxOutbox(SCHEMA)

# Every opened case's first events and its index row, for a whole batch, in one statement, with the events the
# batch publishes put in the outbox (in the order given) and its deadlines set (as SET_ALL does) in the same
# statement. `written` holds each event once, serialised once: the published ones, then any case event or deadline
# cause not published; case events and deadlines name theirs by position (a deadline's becomes its detail's cause).
# The outbox and the case events take the text as it is; only a deadline's cause, which goes into its JSONB detail,
# is parsed (`kept`), once.
# OPEN_ALL_CLAIMING also claims the concerns for the consumer (`claimed`) and writes only what a freshly claimed
# concern led to: each written event names its concern, each case its concern, each deadline its case.
_OPEN_ALL = """
    with {claimed}written as (
      select w.*, case when w.kept then cast(w.body as jsonb) end as document
      from unnest(cast(:event_ids as uuid[]), cast(:event_schools as text[]), cast(:types as text[]),
                  cast(:bodies as text[]), cast(:traceparents as text[]), cast(:published as boolean[]),
                  cast(:kept as boolean[]){causes})
        with ordinality
        as w(event_id, school_id, event_type, body, traceparent, published, kept{cause}, n){fresh_written}
    ),
    appended as (
      insert into {schema}.case_events (case_id, version, school_id, event_id, event_type, event)
      select a.case_id, a.version, w.school_id, w.event_id, w.event_type, w.body
      from unnest(cast(:event_cases as text[]), cast(:versions as integer[]), cast(:positions as bigint[]))
        as a(case_id, version, n)
      join written w on w.n = a.n
    ),
    announced as (select event_id, school_id, event_type, body, traceparent from written where published order by n),
    queued as ({enqueue}),
    due as (
      insert into {schema}.deadlines (deadline_id, school_id, case_id, kind, due_at, status, detail)
      select d.deadline_id, d.school_id, d.case_id, d.kind, d.due_at, 'pending',
             case when w.document is null then d.detail else d.detail || jsonb_build_object('cause', w.document) end
      from unnest(cast(:due_ids as text[]), cast(:due_schools as text[]), cast(:due_cases as text[]),
                  cast(:due_kinds as text[]), cast(:due_at as timestamptz[]), cast(:due_details as jsonb[]),
                  cast(:due_causes as bigint[]))
        as d(deadline_id, school_id, case_id, kind, due_at, detail, n)
      left join written w on w.n = d.n{fresh_due}
      on conflict do nothing
    ),
    indexed as (
      insert into {schema}.cases (case_id, school_id, reference, version, status, policy_version, opened_at)
      select case_id, school_id, reference, version, 'open', policy_version, opened_at
      from unnest(cast(:case_ids as text[]), cast(:schools as text[]), cast(:references as text[]),
                  cast(:case_versions as integer[]), cast(:policy_versions as integer[]),
                  cast(:opened_at as timestamptz[]))
        as opened(case_id, school_id, reference, version, policy_version, opened_at){fresh_cases}
      on conflict (case_id) do update set version = excluded.version, status = excluded.status
    )
    select position, event_id from queued
    """
_PLAIN = dict.fromkeys(("claimed", "causes", "cause", "fresh_written", "fresh_due", "fresh_cases"), "")
_CLAIMING = {
    "claimed": f"""claimed as ({OUTBOX.claim_sql()}),
    fresh_cases as (
      select case_id from unnest(cast(:case_ids as text[]), cast(:case_concerns as uuid[])) as c(case_id, concern)
      where concern in (select event_id from claimed)
    ),
    """,
    "causes": ", cast(:causes as uuid[])",
    "cause": ", cause",
    "fresh_written": "\n      where cause in (select event_id from claimed)",
    "fresh_due": "\n      where d.case_id in (select case_id from fresh_cases)",
    "fresh_cases": "\n      where case_id in (select case_id from fresh_cases)",
}
OPEN_ALL = sa.text(_OPEN_ALL.format(schema=SCHEMA, enqueue=OUTBOX.enqueue_from_sql("announced"), **_PLAIN))
OPEN_ALL_CLAIMING = sa.text(_OPEN_ALL.format(schema=SCHEMA, enqueue=OUTBOX.enqueue_from_sql("announced"), **_CLAIMING))


SET_ALL = sa.text(
    f"""
    insert into {SCHEMA}.deadlines (deadline_id, school_id, case_id, kind, due_at, status, detail)
    select deadline_id, school_id, case_id, kind, due_at, 'pending', detail
    from unnest(cast(:ids as text[]), cast(:schools as text[]), cast(:case_ids as text[]), cast(:kinds as text[]),
                cast(:due as timestamptz[]), cast(:details as jsonb[]))
      as new(deadline_id, school_id, case_id, kind, due_at, detail)
    on conflict do nothing
    """
)


PENDING = sa.text(
    f"""
    select deadline_id, school_id, case_id, kind, due_at, detail from {SCHEMA}.deadlines
    where case_id = any(cast(:case_ids as text[])) and kind = :kind and status = 'pending'
    order by due_at desc
    for update
    """
).columns(
    deadline_id=sa.Text,
    school_id=sa.Text,
    case_id=sa.Text,
    kind=sa.Text,
    due_at=sa.DateTime(timezone=True),
    detail=JSONB,
)
BRING_FORWARD = sa.text(
    f"update {SCHEMA}.deadlines set due_at = :to "
    "where deadline_id = any(cast(:ids as text[])) and status = 'pending' and due_at > :to"
)
