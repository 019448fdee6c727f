"""Secrets `safeguard up` keeps under its data folder, each readable by its owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def persistent_secret(path: Path) -> str:
    """A random secret kept in `path`, created readable by its owner only on first use."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write `path` so that only its owner can read it, from the first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as private_file:
        private_file.write(text)
