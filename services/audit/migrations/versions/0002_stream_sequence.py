"""Audit ledger: each entry's sequence in the event stream, so the chain's order can be checked against it.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "audit"


def upgrade() -> None:
    op.add_column("ledger", sa.Column("stream_sequence", sa.BigInteger), schema=SCHEMA)
