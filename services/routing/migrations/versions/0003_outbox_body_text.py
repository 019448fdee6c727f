"""Routing: the outbox body is the JSON text the relay publishes, not JSONB (no parse, no re-serialise).

Revision ID: 0003
"""

from shared.inbox_outbox import outbox_body_as_jsonb, outbox_body_as_text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "routing"


def upgrade() -> None:
    outbox_body_as_text(SCHEMA)


def downgrade() -> None:
    outbox_body_as_jsonb(SCHEMA)
