"""Secrets people sign in with: argon2 password hashes, TOTP codes (no replay), and lock-out arithmetic."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified when the username is unknown, so a wrong username takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")
TOTP_STEP_SECONDS = 30


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _HASHER.hash(password)


def password_matches(password: str, password_hash: str | None) -> bool:
    """Whether the password fits the hash (always spends the same effort, even with no account)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(code: str, *, secret: str, now: datetime, last_step: int) -> int | None:
    """The time step the code belongs to (one step of clock drift either way), or None if wrong or used before."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


@dataclass(frozen=True)
class LockOut:
    """After `after` failures in a row an account is locked for `minutes`."""

    after: int
    minutes: float

    def locked(self, locked_until: datetime | None, *, now: datetime) -> bool:
        return locked_until is not None and locked_until > now

    def after_failure(self, failures: int, *, now: datetime) -> datetime | None:
        """When the account unlocks once it has failed `failures` times in a row (None: not locked)."""
        return now + timedelta(minutes=self.minutes) if failures >= self.after else None


def new_token() -> str:
    """A random value for a session cookie or a CSRF token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a session: a leaked table gives nobody a cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


def signed(value: str, *, key: bytes) -> str:
    """An HMAC of `value` (the sign-in form's CSRF token is the HMAC of its cookie)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
