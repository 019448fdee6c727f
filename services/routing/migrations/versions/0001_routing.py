"""Routing: case event store (optimistic concurrency), policy versions, durable deadlines; inbox, outbox.

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

SCHEMA = "routing"


def upgrade() -> None:
    create_inbox_outbox(SCHEMA)
    op.create_table(
        "case_events",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event", JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False, unique=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "policies",
        sa.Column("school_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "deadlines",
        sa.Column("deadline_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "deadlines_pending",
        "deadlines",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
