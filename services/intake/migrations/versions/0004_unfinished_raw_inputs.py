"""Intake: an index of raw inputs still `received`, so the sweeper finds the unfinished ones without a scan.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_index(
        "raw_inputs_unfinished",
        "raw_inputs",
        ["received_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'received'"),
    )


def downgrade() -> None:
    op.drop_index("raw_inputs_unfinished", table_name="raw_inputs", schema=SCHEMA)
