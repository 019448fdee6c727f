"""The VAPID key (RFC 8292): made once when first needed, kept in a 0600 file, and reused after restarts."""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid


def load_or_create(path: Path) -> Vapid:
    """The key in `path`; when there is none yet, a new one kept there readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = Vapid()
        fresh.generate_keys()
        draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(fresh.private_pem())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # A hard link appears whole and never replaces a key another process kept first.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    return Vapid.from_pem(path.read_bytes())


def application_server_key(vapid: Vapid) -> str:
    """The public key as the browser's `applicationServerKey` wants it: uncompressed point, base64url."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class KeptVapidKey:
    """The key at `path`, read (or made) on first use, so building the app touches no file."""

    path: Path
    _vapid: Vapid | None = field(default=None, init=False, repr=False)

    def __call__(self) -> Vapid:
        if self._vapid is None:
            self._vapid = load_or_create(self.path)
        return self._vapid

    def public(self) -> str:
        return application_server_key(self())
