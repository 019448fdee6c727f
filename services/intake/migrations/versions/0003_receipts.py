"""Intake: receipts, so a reporter with a reference and its one-time secret can see what stage a concern is at.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.Text),
        sa.Column("case_id", sa.Text, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("receipts", schema=SCHEMA)
