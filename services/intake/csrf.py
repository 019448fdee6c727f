"""CSRF for the report form: a signed double-submit token (cookie and hidden field carry the same signed value)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "sg_csrf"
FIELD = "csrf_token"


def new_token(key: str) -> str:
    """A fresh token: a random value and its HMAC under the service's key."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_mac(key, nonce)}"


def _mac(key: str, nonce: str) -> str:
    return hmac.new(key.encode(), b"report-form-csrf." + nonce.encode(), hashlib.sha256).hexdigest()


def token_is_good(key: str, *, cookie: str | None, field: str | None) -> bool:
    """True when the posted field equals the cookie and carries our signature (another site can set neither)."""
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        return False
    nonce, _, mac = field.partition(".")
    return bool(nonce) and hmac.compare_digest(mac.encode(), _mac(key, nonce).encode())
