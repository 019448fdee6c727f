"""Audit ledger: append-only, hash-chained per school; inbox and outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.inbox_outbox import create_inbox_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "audit"


def upgrade() -> None:
    create_inbox_outbox(SCHEMA)
    op.create_table(
        "ledger",
        sa.Column("position", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("school_sequence", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("trace_id", sa.Text),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", JSONB, nullable=False),
        sa.Column("previous_hash", sa.Text, nullable=False),
        sa.Column("entry_hash", sa.Text, nullable=False),
        sa.Column("appended_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("school_id", "school_sequence"),
        schema=SCHEMA,
    )
    op.create_index("ledger_correlation", "ledger", ["correlation_id"], schema=SCHEMA)
    # The record is append-only: the database itself refuses to change or remove a row.
    op.execute(
        f"""
        create function {SCHEMA}.refuse_change() returns trigger language plpgsql as $$
        begin
          raise exception 'the audit ledger is append-only: % refused', tg_op
            using errcode = 'insufficient_privilege';
        end $$
        """
    )
    op.execute(
        f"create trigger ledger_no_update before update or delete on {SCHEMA}.ledger "
        f"for each row execute function {SCHEMA}.refuse_change()"
    )
    op.execute(
        f"create trigger ledger_no_truncate before truncate on {SCHEMA}.ledger "
        f"for each statement execute function {SCHEMA}.refuse_change()"
    )
