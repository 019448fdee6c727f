"""Notifications: a delivery is recorded as requested, then attempted outside the consumer's transaction.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("request", JSONB), schema=SCHEMA)
    op.add_column("deliveries", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA)
    op.add_column("deliveries", sa.Column("attempted_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("deliveries", sa.Column("ready_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_index(
        "deliveries_ready",
        "deliveries",
        ["ready_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('requested', 'sending')"),
    )
