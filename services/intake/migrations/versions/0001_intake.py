"""Intake: raw inputs (kept before parsing), concerns, inbox and outbox.

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

SCHEMA = "intake"


def upgrade() -> None:
    create_inbox_outbox(SCHEMA)
    op.create_table(
        "raw_inputs",
        sa.Column("raw_input_id", sa.Uuid, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rejection_reason", sa.Text),
        sa.Column("reference", sa.Text),
        sa.UniqueConstraint("school_id", "channel", "idempotency_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "concerns",
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column(
            "raw_input_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.raw_inputs.raw_input_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        schema=SCHEMA,
    )
