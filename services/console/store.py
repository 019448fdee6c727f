"""The console's schema: accounts and sessions, and the read model it keeps from the event stream.

Every table carries `school_id` and has row-level security keyed by `app.school_ids`: a request's transaction
runs as REQUEST_ROLE (see `scoped`), so PostgreSQL itself refuses another school's rows even if Python forgot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db_roles import REQUEST_ROLES

SCHEMA = "console"
REQUEST_ROLE = REQUEST_ROLES["console"]
metadata = sa.MetaData(schema=SCHEMA)

accounts = sa.Table(
    "accounts",
    metadata,
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
    # Set when an administrator disabled the account: it cannot sign in, by password or OpenID Connect.
    sa.Column("disabled_at", sa.DateTime(timezone=True)),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # The SHA-256 of the cookie's value: a copy of this table does not let anyone sign in.
    sa.Column("session_hash", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False, index=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

sign_in_attempts = sa.Table(
    "sign_in_attempts",
    metadata,
    sa.Column("attempt_id", sa.BigInteger, sa.Identity(), primary_key=True),
    # Attempts come before anyone is known, so they belong to no school: the empty school id.
    sa.Column("school_id", sa.Text, nullable=False, server_default=""),
    sa.Column("client", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("sign_in_attempts_by_client", "client", "at"),
)

cases = sa.Table(
    "cases",
    metadata,
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
    # A concern arriving after its case was projected sets the case's reporter (one lookup per batch).
    sa.Index("cases_by_concern", "concern_event_id"),
)

case_entries = sa.Table(
    "case_entries",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", JSONB, nullable=False),
    sa.Index("case_entries_by_case", "case_id", "position"),
)

concerns = sa.Table(
    "concerns",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("body", JSONB, nullable=False),
)

policies = sa.Table(
    "policies",
    metadata,
    # Every version a school adopted (from `policy.adopted`): the admin pages show and diff against the latest.
    sa.Column("school_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("document", JSONB, nullable=False),
    sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("adopted_by", sa.Text, nullable=False),
    # The policy's `source.next_review` (from the event), and when routing last reminded that it is due.
    sa.Column("review_due", sa.Date),
    sa.Column("review_reminded_at", sa.DateTime(timezone=True)),
)

deadlines = sa.Table(
    "deadlines",
    metadata,
    # The deadlines a school's policy sets on a case (e.g. consider a LADO referral), from `deadline.set`; routing's
    # own timers (acknowledgement ladder, standing alert, debrief reminders, policy review) are shown elsewhere.
    sa.Column("deadline_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    # From `deadline.reached`: when the timer fired and what routing did (reminded the people told).
    sa.Column("reached_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.Text),
    sa.Index("deadlines_by_case", "case_id"),
)

debrief_actions = sa.Table(
    "debrief_actions",
    metadata,
    # Each debrief action not yet marked done, as routing's fold of the case has it; no description, only who/when.
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("action_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    # How many `debrief.action_due` reminders its owner has had.
    sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
)

oidc_requests = sa.Table(
    "oidc_requests",
    metadata,
    # One row per sign-in sent to an identity provider, used once: the SHA-256 of its `state`.
    sa.Column("state_hash", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False, server_default=""),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("nonce", sa.Text, nullable=False),
    sa.Column("code_verifier", sa.Text, nullable=False),
    # The SHA-256 of the browser's sign-in cookie: the answer must come back to the browser that asked.
    sa.Column("browser_hash", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

SCHOOL_TABLES = (
    "accounts",
    "sessions",
    "sign_in_attempts",
    "cases",
    "case_entries",
    "concerns",
    "policies",
    "oidc_requests",
    "deadlines",
    "debrief_actions",
)


def school_list(school_ids: Iterable[str]) -> str:
    """The value `app.school_ids` holds: school ids joined by commas (ids never contain one)."""
    return ",".join(sorted(school_ids))


@asynccontextmanager
async def scoped(
    sessions_: async_sessionmaker[AsyncSession], *, school_ids: Iterable[str]
) -> AsyncIterator[AsyncSession]:
    """A transaction that can see only these schools' rows: the request role under row-level security."""
    async with sessions_() as session, session.begin():
        await session.execute(sa.text(f"set local role {REQUEST_ROLE}"))
        await session.execute(
            sa.text("select set_config('app.school_ids', :ids, true)"), {"ids": school_list(school_ids)}
        )
        yield session
