"""Notifications: a delivery's request is kept as the JSON text it was published as, not JSONB.

Nothing queries `deliveries.request` inside the JSON: the dispatcher's claim returns it whole for the event
registry to parse, and a receipt reads it back to build its announcement, so PostgreSQL parsing each request into
JSONB on insert (three a concern, in the request statement), and printing it back as text on every claim, was work
nobody used. The text is valid JSON, so ad-hoc SQL can still cast it (`request::jsonb`). A request kept before keeps
its JSON, in JSONB's spelling (same document).

Revision ID: 0006
"""

from shared.migrations import json_as_jsonb, json_as_text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    json_as_text("deliveries", "request", schema=SCHEMA)


def downgrade() -> None:
    json_as_jsonb("deliveries", "request", schema=SCHEMA)
