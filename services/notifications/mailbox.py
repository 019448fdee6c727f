"""A folder of .eml files: where the development email sinks keep messages and `safeguard mail` reads them."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

_LINK = re.compile(r"https?://[^\s<>\"']+")


def keep(directory: Path, raw: bytes, *, name: str) -> Path:
    """Write one message as `<name>.eml`, whole or not at all (a reader never sees half a message).

    It is written under a temporary name of its own, created exclusively (never an existing file, nor a link's
    target), then renamed over `<name>.eml` in one step. The temporary name is this process's and a counter's,
    with a random one only if that is taken (a file left by an earlier process with the same id): no per-message
    draw from `tempfile`'s name generator, and no directory check unless the folder is missing.
    """
    target = directory / f"{name}.eml"
    draft, descriptor = _create_draft(directory, f".{name}.{os.getpid()}.{next(_drafts)}.tmp")
    try:
        try:
            written = os.write(descriptor, raw)
            while written < len(raw):  # a regular file takes it all at once; a short write is only continued
                written += os.write(descriptor, memoryview(raw)[written:])
        finally:
            os.close(descriptor)
        os.replace(draft, target)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    return target


_drafts = itertools.count()
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _create_draft(directory: Path, name: str) -> tuple[Path, int]:
    """A new file for writing (mode 0600) in `directory`, creating the folder (0700) if it is missing."""
    draft = directory / name
    for _ in range(100):
        try:
            return draft, os.open(draft, _CREATE, 0o600)
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError:
            draft = directory / f".{secrets.token_hex(8)}.tmp"
    raise FileExistsError(f"could not create a temporary file in {directory}")


@dataclass(frozen=True)
class KeptMail:
    """One kept message, as the list shows it."""

    path: Path
    date: str
    to: str
    subject: str


def read(path: Path) -> EmailMessage:
    """Parse a kept message with the modern email API (transfer encodings decoded on access)."""
    return parse(path.read_bytes())


def parse(raw: bytes) -> EmailMessage:
    """Parse a message's bytes with the modern email API."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
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
