"""Intake: refused webhook attempts (bad signature, stale timestamp), kept apart from raw inputs.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "webhook_attempts",
        sa.Column("attempt_id", sa.Uuid, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("signature_timestamp", sa.Text),
        sa.Column("body", sa.LargeBinary, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("webhook_attempts_by_time", "webhook_attempts", ["received_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("webhook_attempts", schema=SCHEMA)
