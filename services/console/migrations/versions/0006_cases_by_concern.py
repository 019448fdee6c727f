"""Console: cases found by their concern, for the reporter a case learns when its concern arrives after it.

Each batch that brings concerns updates the cases naming them; without an index that was a scan of every case.

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "console"


def upgrade() -> None:
    op.create_index("cases_by_concern", "cases", ["concern_event_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("cases_by_concern", table_name="cases", schema=SCHEMA)
