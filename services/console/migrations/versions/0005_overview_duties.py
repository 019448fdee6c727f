"""Console: what the trust overview lists as outstanding: policy deadlines on cases, open debrief actions, reviews.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "console"
REQUEST_ROLE = "safeguard_console_request"
NEW_TABLES = ("deadlines", "debrief_actions")
# Routing's own timers: the overview shows them elsewhere (acknowledgements, debrief actions, policy reviews).
ROUTING_TIMERS = (
    "acknowledge",
    "unacknowledged_alert",
    "debrief_action",
    "policy_review",
    "deliver_after_quiet_hours",
)
# The chronology already holds every event about a case: what the new tables would have been fed is there.
BACKFILL_DEADLINES = f"""
insert into {SCHEMA}.deadlines (deadline_id, school_id, case_id, kind, due_at)
select body -> 'payload' ->> 'deadline_id', school_id, case_id, body -> 'payload' ->> 'kind',
       (body -> 'payload' ->> 'due_at')::timestamptz
from {SCHEMA}.case_entries
where event_type = 'deadline.set' and not (body -> 'payload' ->> 'kind' = any(:timers))
on conflict do nothing
"""
BACKFILL_REACHED = f"""
update {SCHEMA}.deadlines d set reached_at = e.occurred_at, outcome = e.body -> 'payload' ->> 'outcome'
from {SCHEMA}.case_entries e
where e.event_type = 'deadline.reached' and e.body -> 'payload' ->> 'deadline_id' = d.deadline_id
"""
# An action is open when the last debrief event naming it recorded it (routing refuses recording an open one).
BACKFILL_ACTIONS = f"""
with named as (
    select e.case_id, e.school_id, e.position, e.event_type, a ->> 'action_id' as action_id,
           a ->> 'owner' as owner, (a ->> 'due_on')::date as due_on
    from {SCHEMA}.case_entries e
    cross join lateral jsonb_array_elements(e.body -> 'payload' -> 'actions') a
    where e.event_type = 'case.debrief_recorded'
    union all
    select case_id, school_id, position, event_type, body -> 'payload' ->> 'action_id', null, null
    from {SCHEMA}.case_entries where event_type = 'case.debrief_action_completed'
), last as (
    select distinct on (case_id, action_id) * from named order by case_id, action_id, position desc
)
insert into {SCHEMA}.debrief_actions (case_id, action_id, school_id, owner, due_on, reminders)
select l.case_id, l.action_id, l.school_id, l.owner, l.due_on,
       coalesce((select max((r.body -> 'payload' ->> 'reminder_number')::int)
                 from {SCHEMA}.case_entries r
                 where r.event_type = 'debrief.action_due' and r.case_id = l.case_id
                   and r.body -> 'payload' ->> 'action_id' = l.action_id and r.position > l.position), 0)
from last l where l.event_type = 'case.debrief_recorded'
"""


def upgrade() -> None:
    op.add_column("policies", sa.Column("review_due", sa.Date), schema=SCHEMA)
    op.add_column("policies", sa.Column("review_reminded_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    # Versions kept before this migration: their review date is in the document they carry.
    op.execute(
        f"update {SCHEMA}.policies set review_due = (document -> 'source' ->> 'next_review')::date "
        "where document -> 'source' ->> 'next_review' is not null"
    )
    op.create_table(
        "deadlines",
        sa.Column("deadline_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text),
        sa.Index("deadlines_by_case", "case_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "debrief_actions",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("action_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    for table in NEW_TABLES:
        op.execute(f"grant select, insert, update, delete on {SCHEMA}.{table} to {REQUEST_ROLE}")
        op.execute(f"alter table {SCHEMA}.{table} enable row level security")
        op.execute(
            f"create policy {table}_by_school on {SCHEMA}.{table} to {REQUEST_ROLE} using "
            f"(school_id = any(string_to_array(current_setting('app.school_ids', true), ',')))"
        )
        op.execute(f"create policy {table}_unscoped on {SCHEMA}.{table} using (current_user <> '{REQUEST_ROLE}')")
    op.execute(sa.text(BACKFILL_DEADLINES).bindparams(timers=list(ROUTING_TIMERS)))
    op.execute(BACKFILL_REACHED)
    op.execute(BACKFILL_ACTIONS)
