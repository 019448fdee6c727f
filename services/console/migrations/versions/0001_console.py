"""Console: accounts, sessions, sign-in attempts, the case read model and read audit, each under row-level security.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.inbox_outbox import create_inbox_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "console"
REQUEST_ROLE = "safeguard_console_request"
SCHOOL_TABLES = ("accounts", "sessions", "sign_in_attempts", "cases", "case_entries", "concerns", "read_audit")


def _tables() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.Text, nullable=False),
        sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False, index=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "sign_in_attempts",
        sa.Column("attempt_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False, server_default=""),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("sign_in_attempts_by_client", "client", "at"),
        schema=SCHEMA,
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("concern_event_id", sa.Text),
        sa.Column("kind", sa.Text, nullable=False, server_default=""),
        sa.Column("case_type", sa.Text, nullable=False, server_default="concern"),
        sa.Column("urgency", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("acknowledged_by", sa.Text),
        sa.Column("acknowledge_due", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("subject_person_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("recipient_person_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("reporter_person_id", sa.Text),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Index("cases_by_school", "school_id", "status"),
        schema=SCHEMA,
    )
    op.create_table(
        "case_entries",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Index("case_entries_by_case", "case_id", "position"),
        schema=SCHEMA,
    )
    op.create_table(
        "concerns",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "read_audit",
        sa.Column("read_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("school_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def _row_level_security() -> None:
    # The role is made by the database setup (shared/db_roles.ensure_roles), since the owner that migrates has
    # no CREATEROLE; a connection that may create roles (a superuser in a test) makes it here. Roles are
    # cluster-wide: another database (or a concurrent migration) may have made it already.
    op.execute(
        f"""
        do $$ begin
            if not exists (select 1 from pg_roles where rolname = '{REQUEST_ROLE}') then
                if not exists (
                    select 1 from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)
                ) then
                    raise exception 'role {REQUEST_ROLE} is missing: run the database setup (ensure_roles) first';
                end if;
                create role {REQUEST_ROLE} nologin;
            end if;
        exception when duplicate_object or unique_violation then null;
        end $$
        """
    )
    op.execute(f"grant usage on schema {SCHEMA} to {REQUEST_ROLE}")
    for table in SCHOOL_TABLES:
        op.execute(f"grant select, insert, update, delete on {SCHEMA}.{table} to {REQUEST_ROLE}")
        op.execute(f"alter table {SCHEMA}.{table} enable row level security")
        op.execute(
            f"create policy {table}_by_school on {SCHEMA}.{table} to {REQUEST_ROLE} using "
            f"(school_id = any(string_to_array(current_setting('app.school_ids', true), ',')))"
        )
    op.execute(f"grant usage on all sequences in schema {SCHEMA} to {REQUEST_ROLE}")


def upgrade() -> None:
    create_inbox_outbox(SCHEMA)
    _tables()
    _row_level_security()
