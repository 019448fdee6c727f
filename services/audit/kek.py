"""The key-encryption key (KEK) that wraps each school's key: a file beside the audit service, or a KMS.

Anything with `key_id`, `wrap` and `unwrap` will do (`KeyEncryptionKey`): a cloud KMS or an HSM can stand in
for `LocalKek` without the rest of audit knowing. The KEK is never stored in the database; losing it loses
every sealed field (back it up offline, apart from the database's backups).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag

from services.audit.key_files import load_or_create_secret
from services.audit.sealing import KEY_BYTES, aead_open, aead_seal, new_key


class WrongKeyEncryptionKey(Exception):
    """The school keys were wrapped by another KEK than the one audit holds: nothing can be read or sealed."""


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps a school's key; `context` is bound to the wrapping (associated data)."""

    @property
    def key_id(self) -> str: ...

    async def wrap(self, key: bytes, *, context: bytes) -> bytes: ...

    async def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        """The key; raises WrongKeyEncryptionKey when this KEK did not wrap it (or the wrapping was altered)."""
        ...


class LocalKek:
    """A KEK held by this process: AES-256-GCM with a fresh nonce per wrap."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a key-encryption key is {KEY_BYTES} bytes")
        self._secret = secret
        self._id = hashlib.sha256(b"safeguard audit kek\n" + secret).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._id

    async def wrap(self, key: bytes, *, context: bytes) -> bytes:
        return aead_seal(self._secret, key, associated=context)

    async def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        try:
            return aead_open(self._secret, wrapped, associated=context)
        except (InvalidTag, ValueError):
            raise WrongKeyEncryptionKey(
                f"key-encryption key {self._id} does not unwrap this school key: the wrong KEK, or an altered key row"
            ) from None


def load_or_create_kek(path: Path) -> LocalKek:
    """The KEK from its file (base64 of 32 random bytes), created (mode 0600) on first use."""
    text = load_or_create_secret(path, make=lambda: base64.b64encode(new_key()) + b"\n", what="key-encryption key")
    try:
        return LocalKek(base64.b64decode(text.strip(), validate=True))
    except ValueError:
        raise ValueError(f"{path.name} does not hold a key-encryption key (base64 of {KEY_BYTES} bytes)") from None
