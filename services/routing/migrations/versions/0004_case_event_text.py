"""Routing: a case event is kept as the JSON text it was published as, not JSONB.

Nothing queries `case_events.event` inside the JSON: every reader selects it whole and parses it in Python
(`SqlCaseEvents.load`, the debrief listing), so PostgreSQL parsing each event into JSONB on insert (two a concern,
in triage's statement) and SQLAlchemy decoding it into a dict on every read was work nobody used. The text is
valid JSON, so ad-hoc SQL can still cast it (`event::jsonb`). An event kept before keeps its JSON, in JSONB's
spelling (same document).

Revision ID: 0004
"""

from shared.migrations import json_as_jsonb, json_as_text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "routing"


def upgrade() -> None:
    json_as_text("case_events", "event", schema=SCHEMA)


def downgrade() -> None:
    json_as_jsonb("case_events", "event", schema=SCHEMA)
