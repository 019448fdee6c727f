"""Audit ledger: the entry bytes are the event's only copy; the `event` JSONB goes, a view gives it to ad-hoc SQL.

Since 0004 every reader decodes events from `entry` (the hashed bytes) and nothing in Safeguard read `event`, a
JSONB that PostgreSQL parsed out of those same bytes on every append and that made each row about twice as big
(over the TOAST threshold). `audit.ledger_events` derives it from the bytes when an ad-hoc query asks. No query
used `ledger_correlation` (a case's chronology scans the school's chain for payloads naming the case anyway);
who-read gets a narrow index instead: a case's `record.viewed` entries.

Nothing hashed changes: `entry`, `entry_hash`, `previous_hash` and the sequences are untouched, so every entry
verifies as it did. (Dropping a column only marks it dropped: rows written before keep its bytes on disk until
the table is rewritten, e.g. `VACUUM FULL audit.ledger` by the owner.)

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "audit"

# The canonical JSON starts after the previous hash (64 hex digits), the sequence and their two newlines.
EVENT = "convert_from(substring(entry from 67 + length(school_sequence::text)), 'UTF8')::jsonb"


def upgrade() -> None:
    op.drop_index("ledger_correlation", table_name="ledger", schema=SCHEMA)
    op.drop_column("ledger", "event", schema=SCHEMA)
    op.create_index(
        "ledger_views",
        "ledger",
        ["aggregate_id"],
        schema=SCHEMA,
        postgresql_where="event_type = 'record.viewed'",
    )
    # security_invoker: reading through the view needs the same privileges as reading the table itself.
    op.execute(
        f"""
        create view {SCHEMA}.ledger_events with (security_invoker = true) as
        select position, school_id, school_sequence, event_id, event_type, aggregate_id, correlation_id, trace_id,
               occurred_at, appended_at, stream_sequence, {EVENT} as event
        from {SCHEMA}.ledger
        """
    )
