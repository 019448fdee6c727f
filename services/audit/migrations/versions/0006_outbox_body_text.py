"""Audit: the outbox body is the JSON text the relay publishes, not JSONB (no parse, no re-serialise).

Revision ID: 0006
"""

from shared.inbox_outbox import outbox_body_as_jsonb, outbox_body_as_text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "audit"


def upgrade() -> None:
    outbox_body_as_text(SCHEMA)


def downgrade() -> None:
    outbox_body_as_jsonb(SCHEMA)
