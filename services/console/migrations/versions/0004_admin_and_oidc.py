"""Console: accounts can be disabled, adopted policy versions are kept for the admin pages, OpenID Connect requests.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "console"
REQUEST_ROLE = "safeguard_console_request"
NEW_TABLES = ("policies", "oidc_requests")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("disabled_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_table(
        "policies",
        sa.Column("school_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("adopted_by", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "oidc_requests",
        sa.Column("state_hash", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=False),
        sa.Column("browser_hash", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    for table in NEW_TABLES:
        op.execute(f"grant select, insert, update, delete on {SCHEMA}.{table} to {REQUEST_ROLE}")
        op.execute(f"alter table {SCHEMA}.{table} enable row level security")
        op.execute(
            f"create policy {table}_by_school on {SCHEMA}.{table} to {REQUEST_ROLE} using "
            f"(school_id = any(string_to_array(current_setting('app.school_ids', true), ',')))"
        )
        op.execute(f"create policy {table}_unscoped on {SCHEMA}.{table} using (current_user <> '{REQUEST_ROLE}')")
