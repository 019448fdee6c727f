"""Routing: notifications that failed for good (who cannot be reached), and dead letters counted per window.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "routing"


def upgrade() -> None:
    op.create_table(
        "notification_failures",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_notification_failures_case_id", "notification_failures", ["case_id"], schema=SCHEMA)
    op.create_table(
        "dead_letter_alerts",
        sa.Column("school_id", sa.Text, primary_key=True),
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("parked", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
