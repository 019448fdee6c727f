"""Attachments to a report: type told by content (never by name), stored by SHA-256, a disallowed file quarantined."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
ALLOWED = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "message/rfc822"}
)
_EMAIL_HEADERS = ("from", "to", "subject", "date", "message-id")


def sniff(data: bytes) -> str:
    """The media type `data` really is, by its first bytes; `application/octet-stream` when unknown."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" in data[:8192]:
        return "application/octet-stream"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    head = BytesParser(policy=policy.default).parsebytes(data[:16384], headersonly=True)
    if sum(head.get(name) is not None for name in _EMAIL_HEADERS) >= 2:
        return "message/rfc822"
    readable = all(c.isprintable() or c.isspace() for c in text)
    return "text/plain" if readable else "application/octet-stream"


@dataclass(frozen=True)
class StoredAttachment:
    sha256: str
    size: int
    media_type: str
    quarantine_reason: str | None = None

    def describe(self) -> str:
        """How the concern lists it: hash, type, size, and the quarantine reason if any (never the file's name)."""
        kept = f"sha256:{self.sha256} ({self.media_type}, {self.size} bytes)"
        return f"{kept} quarantined: {self.quarantine_reason}" if self.quarantine_reason else kept


def judge(data: bytes, *, max_bytes: int) -> StoredAttachment:
    """What an attachment is and whether it is allowed (pure)."""
    media_type = sniff(data)
    reason = None
    if len(data) > max_bytes:
        reason = f"larger than {max_bytes} bytes"
    elif media_type not in ALLOWED:
        reason = "not an image, PDF, plain text or email by its content"
    return StoredAttachment(hashlib.sha256(data).hexdigest(), len(data), media_type, reason)


@dataclass(frozen=True)
class AttachmentStore:
    """Files under `root/<first two hex>/<sha256>`; quarantined ones under `root/quarantine/`. Same bytes, one file."""

    root: Path

    def path_of(self, attachment: StoredAttachment) -> Path:
        folder = self.root / "quarantine" if attachment.quarantine_reason else self.root / attachment.sha256[:2]
        return folder / attachment.sha256

    def _write(self, path: Path, data: bytes) -> None:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        os.replace(partial, path)  # atomic: a reader never sees half a file

    async def keep(self, data: bytes, *, max_bytes: int) -> StoredAttachment:
        """Judge and store one attachment; a disallowed one is stored in quarantine, never dropped."""
        attachment = judge(data, max_bytes=max_bytes)
        await asyncio.to_thread(self._write, self.path_of(attachment), data)
        return attachment
