"""A folder of .eml files: where the development email sinks keep messages and `safeguard mail` reads them."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

_LINK = re.compile(r"https?://[^\s<>\"']+")


def keep(directory: Path, raw: bytes, *, name: str) -> Path:
    """Write one message as `<name>.eml`, whole or not at all (a reader never sees half a message)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{name}.eml"
    with tempfile.NamedTemporaryFile("wb", dir=directory, delete=False, suffix=".tmp") as handle:
        handle.write(raw)
    os.replace(handle.name, target)
    return target


@dataclass(frozen=True)
class KeptMail:
    """One kept message, as the list shows it."""

    path: Path
    date: str
    to: str
    subject: str


def read(path: Path) -> EmailMessage:
    """Parse a kept message with the modern email API (transfer encodings decoded on access)."""
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


def kept(directory: Path) -> list[KeptMail]:
    """Every kept message, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name)):
        message = read(path)
        found.append(
            KeptMail(path, str(message["Date"] or ""), str(message["To"] or ""), str(message["Subject"] or ""))
        )
    return found


def plain_text(message: EmailMessage) -> str:
    """The text/plain body, decoded whatever its transfer encoding."""
    part = message.get_body(preferencelist=("plain",))
    return "" if part is None else str(part.get_content())  # type: ignore[attr-defined]


def links(message: EmailMessage) -> list[str]:
    """The web links in the plain-text body, in order."""
    return _LINK.findall(plain_text(message))
