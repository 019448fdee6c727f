"""Console: reads are recorded as `record.viewed` events in audit's ledger, so the local read_audit table goes.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "console"


def upgrade() -> None:
    # Its row-level security policy goes with it.
    op.execute(f"drop table if exists {SCHEMA}.read_audit")
