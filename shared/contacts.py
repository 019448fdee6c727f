"""A person's address as Safeguard reaches them: a phone number in E.164 form, an email address in one form."""

from __future__ import annotations

import re

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# One @, something before it, a dotted domain after it, nothing that ends a header or separates addresses.
_EMAIL = re.compile(r"^[^@\s,;<>\"()\[\]]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
EMAIL_MAX = 254


def e164(address: str) -> str | None:
    """The number in E.164 form ('+44 7700 900101' -> '+447700900101'), or None when it is not one."""
    number = re.sub(r"[\s().-]", "", address)
    return number if _E164.match(number) else None


def email_address(address: str) -> str | None:
    """The address with its domain in lower case ('Sam@Example.ORG ' -> 'Sam@example.org'), or None if not one."""
    text = address.strip()
    if len(text) > EMAIL_MAX or not _EMAIL.match(text) or ".." in text:
        return None
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"
