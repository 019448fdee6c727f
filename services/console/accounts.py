"""Accounts and sessions in the database: create, check a password then a code, sessions, sign out everywhere.

These run as the service's own database role, before anyone's schools are known; everything a signed-in
person reads runs through `store.scoped` instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.passwords import (
    LockOut,
    hash_password,
    new_token,
    new_totp_secret,
    password_matches,
    token_hash,
    totp_step,
)
from services.console.store import accounts, sessions, sign_in_attempts

Stage = Literal["password_checked", "signed_in"]
PASSWORD_CHECKED: Stage = "password_checked"
SIGNED_IN: Stage = "signed_in"


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    totp_secret: str


@dataclass(frozen=True)
class Session:
    """A session as the request sees it: the cookie value is never stored, only its hash."""

    account_id: str
    stage: str
    csrf_token: str


@dataclass(frozen=True)
class Issued:
    cookie: str
    csrf_token: str


async def add_account(
    session: AsyncSession, *, username: str, password: str | None, school_id: str, person_id: str, role: str
) -> NewAccount:
    """Create an account with a fresh TOTP secret (shown once, to be put in an authenticator app).

    Without a password the account signs in only through the school's identity provider (OpenID Connect): its
    hash is of a random value nobody is told.
    """
    account_id = str(uuid.uuid4())
    secret = new_totp_secret()
    password = password if password is not None else new_token()
    await session.execute(
        sa.insert(accounts).values(
            account_id=account_id,
            username=username,
            school_id=school_id,
            person_id=person_id,
            role=role,
            password_hash=hash_password(password),
            totp_secret=secret,
        )
    )
    return NewAccount(account_id, secret)


async def too_many_attempts(session: AsyncSession, *, client: str, now: datetime, per_minute: int) -> bool:
    """Count this attempt; True when the client has made more than `per_minute` in the last minute."""
    await session.execute(sa.insert(sign_in_attempts).values(client=client, at=now))
    await session.execute(sa.delete(sign_in_attempts).where(sign_in_attempts.c.at < now - timedelta(hours=1)))
    recent = await session.scalar(
        sa.select(sa.func.count())
        .select_from(sign_in_attempts)
        .where(sign_in_attempts.c.client == client, sign_in_attempts.c.at > now - timedelta(minutes=1))
    )
    return (recent or 0) > per_minute


async def _failed(session: AsyncSession, account: sa.Row, *, now: datetime, lock_out: LockOut) -> None:
    failures = account.failed_sign_ins + 1
    await session.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == account.account_id)
        .values(failed_sign_ins=failures, locked_until=lock_out.after_failure(failures, now=now))
    )


async def check_password(
    session: AsyncSession, *, username: str, password: str, now: datetime, lock_out: LockOut
) -> str | None:
    """The account id when the password is right and the account not locked; counts a failure otherwise."""
    account = (
        await session.execute(sa.select(accounts).where(accounts.c.username == username).with_for_update())
    ).one_or_none()
    matches = password_matches(password, account.password_hash if account else None)
    if account is None or account.disabled_at is not None:
        return None
    if lock_out.locked(account.locked_until, now=now):
        return None
    if not matches:
        await _failed(session, account, now=now, lock_out=lock_out)
        return None
    return str(account.account_id)


async def check_code(session: AsyncSession, *, account_id: str, code: str, now: datetime, lock_out: LockOut) -> bool:
    """Whether the TOTP code is right and unused; a right code resets the failures, a wrong one counts."""
    account = (
        await session.execute(sa.select(accounts).where(accounts.c.account_id == account_id).with_for_update())
    ).one()
    if account.disabled_at is not None or lock_out.locked(account.locked_until, now=now):
        return False
    step = totp_step(code.strip(), secret=account.totp_secret, now=now, last_step=account.totp_last_step)
    if step is None:
        await _failed(session, account, now=now, lock_out=lock_out)
        return False
    await session.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(totp_last_step=step, failed_sign_ins=0, locked_until=None)
    )
    return True


async def issue_session(
    session: AsyncSession, *, account_id: str, stage: Stage, now: datetime, lasts: timedelta
) -> Issued:
    """A brand-new session id (never one the browser offered: no session fixation)."""
    cookie, csrf = new_token(), new_token()
    school_id = await session.scalar(sa.select(accounts.c.school_id).where(accounts.c.account_id == account_id))
    await session.execute(
        sa.insert(sessions).values(
            session_hash=token_hash(cookie),
            account_id=account_id,
            school_id=school_id,
            stage=stage,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + lasts,
        )
    )
    return Issued(cookie, csrf)


async def find_session(session: AsyncSession, cookie: str, *, now: datetime) -> Session | None:
    row = (
        await session.execute(
            sa.select(sessions).where(sessions.c.session_hash == token_hash(cookie), sessions.c.expires_at > now)
        )
    ).one_or_none()
    return Session(row.account_id, row.stage, row.csrf_token) if row else None


async def end_session(session: AsyncSession, cookie: str) -> None:
    await session.execute(sa.delete(sessions).where(sessions.c.session_hash == token_hash(cookie)))


async def end_every_session(session: AsyncSession, *, account_id: str) -> int:
    """Sign the account out on every device; returns how many sessions ended."""
    ended = await session.execute(sa.delete(sessions).where(sessions.c.account_id == account_id))
    return int(getattr(ended, "rowcount", 0) or 0)


async def account_row(session: AsyncSession, account_id: str) -> sa.Row | None:
    return (await session.execute(sa.select(accounts).where(accounts.c.account_id == account_id))).one_or_none()


async def set_disabled(session: AsyncSession, *, account_id: str, disabled: bool, now: datetime) -> bool:
    """Disable (ending every session) or enable an account; False when it was already so."""
    changed = await session.execute(
        sa.update(accounts)
        .where(
            accounts.c.account_id == account_id,
            accounts.c.disabled_at.is_(None) if disabled else accounts.c.disabled_at.is_not(None),
        )
        .values(disabled_at=now if disabled else None, failed_sign_ins=0, locked_until=None)
        .returning(accounts.c.account_id)
    )
    if changed.first() is None:
        return False
    if disabled:
        await end_every_session(session, account_id=account_id)
    return True


async def reset_second_factor(session: AsyncSession, *, account_id: str) -> str:
    """A new TOTP secret for the account (shown once); the old one stops working and every session ends."""
    secret = new_totp_secret()
    await session.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(totp_secret=secret, totp_last_step=0, failed_sign_ins=0, locked_until=None)
    )
    await end_every_session(session, account_id=account_id)
    return secret
