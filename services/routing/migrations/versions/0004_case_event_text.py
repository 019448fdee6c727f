"""Routing: a case event is kept as the JSON text it was published as, not JSONB.

Nothing queries `case_events.event` inside the JSON: every reader selects it whole and parses it in Python
(`SqlCaseEvents.load`, the debrief listing), so PostgreSQL parsing each event into JSONB on insert (two a concern,
in triage's statement) and SQLAlchemy decoding it into a dict on every read was work nobody used. The text is
valid JSON, so ad-hoc SQL can still cast it (`event::jsonb`). An event kept before keeps its JSON, in JSONB's
spelling (same document).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "routing"


def upgrade() -> None:
    op.alter_column("case_events", "event", type_=sa.Text, postgresql_using="event::text", schema=SCHEMA)


def downgrade() -> None:
    op.alter_column("case_events", "event", type_=JSONB, postgresql_using="event::jsonb", schema=SCHEMA)
