"""Notifications: an attempt past SMTP's point of no return (`committing`), the provider's id, and receipts.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("provider_message_id", sa.Text), schema=SCHEMA)
    op.add_column("deliveries", sa.Column("receipt", sa.Text), schema=SCHEMA)
    op.add_column("deliveries", sa.Column("receipt_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    # `committing` rows are in flight too: a restart must find them to record them sent, unconfirmed.
    op.drop_index("deliveries_ready", table_name="deliveries", schema=SCHEMA)
    op.create_index(
        "deliveries_ready",
        "deliveries",
        ["ready_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('requested', 'sending', 'committing')"),
    )
