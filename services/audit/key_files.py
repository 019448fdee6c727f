"""Secret key files beside the audit service: created 0600 on first use, refused when others can read them.

Stdlib only: the signing key and the key-encryption key are both kept this way, never in the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def load_or_create_secret(path: Path, *, make: Callable[[], bytes], what: str) -> bytes:
    """The bytes of the key file at `path`, written from `make()` (mode 0600) when it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        content = make()
        # O_EXCL: two processes starting together never overwrite each other's key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_secret(path, make=make, what=what)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        return content
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"the audit {what} {path.name} is readable by others: chmod 600 it")
    return path.read_bytes()
