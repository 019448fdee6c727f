"""Notifications: one delivery row per notification id; inbox and outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared.inbox_outbox import create_inbox_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    create_inbox_outbox(SCHEMA)
    op.create_table(
        "deliveries",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("recipient_person_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("requested_event_id", sa.Uuid, nullable=False),
        sa.Column("correlation_id", sa.Uuid, nullable=False),
        sa.Column("traceparent", sa.Text),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.Text),
        schema=SCHEMA,
    )
