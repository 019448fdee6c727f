"""Console: the service's own login role works across schools (sign-in, the read model); only requests are scoped.

With row-level security on and policies only for the request role, every other role was denied every row, so
the console running as its own role (not a superuser) could neither sign anyone in nor keep its read model.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "console"
REQUEST_ROLE = "safeguard_console_request"
SCHOOL_TABLES = ("accounts", "sessions", "sign_in_attempts", "cases", "case_entries", "concerns", "read_audit")


def upgrade() -> None:
    # Not named after the login role: it may not exist yet where tests migrate as a superuser. Only the service's
    # role and the request role hold rights on these tables; the request role stays under `<table>_by_school`.
    for table in SCHOOL_TABLES:
        op.execute(f"create policy {table}_unscoped on {SCHEMA}.{table} using (current_user <> '{REQUEST_ROLE}')")
