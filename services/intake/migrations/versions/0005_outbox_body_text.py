"""Intake: the outbox body is the JSON text the relay publishes, not JSONB (no parse, no re-serialise).

Revision ID: 0005
"""

from shared.inbox_outbox import outbox_body_as_jsonb, outbox_body_as_text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    outbox_body_as_text(SCHEMA)


def downgrade() -> None:
    outbox_body_as_jsonb(SCHEMA)
