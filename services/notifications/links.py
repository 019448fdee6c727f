"""Acknowledgement links: a token bound to one notification, its recipient and an expiry, signed with the kept key.

Token: `<expiry as base36 Unix seconds>.<HMAC-SHA256 over (notification, person, expiry), 128 bits, base64url>`,
29 characters, short enough for an SMS link. The page the link opens carries a second value derived from
the token (`page_check`), which the acknowledging POST must return: a form on another site cannot know it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

LinkState = Literal["valid", "expired", "invalid"]
DEFAULT_LIFETIME = timedelta(days=7)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
    return text or "0"


@dataclass(frozen=True)
class AckLinks:
    """Signs and checks acknowledgement-link tokens."""

    key: bytes
    lifetime: timedelta = DEFAULT_LIFETIME

    def token(self, notification_id: str, *, person_id: str, now: datetime) -> str:
        """A token for this notification and person that stops working `lifetime` after `now`."""
        expiry = _base36(int((now + self.lifetime).timestamp()))
        return f"{expiry}.{self._mac('ack', notification_id, person_id, expiry)}"

    def check(self, notification_id: str, token: str, *, person_id: str, now: datetime) -> LinkState:
        """Whether the token is this notification's and person's, and still in date (signature checked first)."""
        expiry, _, mac = token.partition(".")
        if not expiry.isalnum() or not hmac.compare_digest(self._mac("ack", notification_id, person_id, expiry), mac):
            return "invalid"
        return "valid" if int(expiry, 36) > now.timestamp() else "expired"

    def page_check(self, notification_id: str, token: str) -> str:
        """The value the link's page embeds and its POST must send back."""
        return self._mac("page", notification_id, token)

    def receipt_token(self, notification_id: str) -> str:
        """The token a push message carries so its service worker can say it was shown (and nothing else)."""
        return self._mac("receipt", notification_id)

    def receipt_valid(self, notification_id: str, token: str) -> bool:
        return hmac.compare_digest(self.receipt_token(notification_id).encode(), token.encode())

    def _mac(self, purpose: str, *parts: str) -> str:
        message = "\x1f".join((purpose, *parts)).encode()
        digest = hmac.new(self.key, message, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
