"""Signed tree heads: what a school's ledger looked like at a moment, signed with a key the database never holds.

A head names the school, the tree size, the Merkle root, when it was made and the head before it (the SHA-256
of that head's signed document), so heads form a chain of their own. The Ed25519 key lives in a file beside the
audit service (created 0600 on first start); verifying a head needs only the public key. Each head is written
to the witness log with the entries it adds (sequence, event id, entry hash), so a copy of that file taken off
the machine rebuilds the tree by itself and says exactly which entry a later rewrite touched.

Stdlib and `cryptography` only: the standalone export verifier imports this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.audit.domain import canonical_json
from services.audit.key_files import load_or_create_secret

SIGNING_CONTEXT = b"safeguard tree head v1\n"  # a signature over a head can never be mistaken for another use


@dataclass(frozen=True)
class TreeHead:
    """The ledger of one school at `tree_size` entries has Merkle root `root_hash` (hex)."""

    school_id: str
    tree_size: int
    root_hash: str
    timestamp: str  # ISO 8601, UTC
    previous: str | None  # ref of the head before, None for a school's first head

    def document(self) -> dict[str, Any]:
        return {
            "school_id": self.school_id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "previous": self.previous,
        }

    def signing_bytes(self) -> bytes:
        return SIGNING_CONTEXT + canonical_json(self.document())


@dataclass(frozen=True)
class SignedHead:
    head: TreeHead
    key_id: str
    signature: str  # base64 Ed25519 signature over head.signing_bytes()

    def document(self) -> dict[str, Any]:
        return {"head": self.head.document(), "key_id": self.key_id, "signature": self.signature}

    @property
    def ref(self) -> str:
        """What the next head names as its `previous`."""
        return hashlib.sha256(canonical_json(self.document())).hexdigest()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> SignedHead:
        head = document["head"]
        return cls(
            head=TreeHead(
                school_id=str(head["school_id"]),
                tree_size=int(head["tree_size"]),
                root_hash=str(head["root_hash"]),
                timestamp=str(head["timestamp"]),
                previous=head.get("previous"),
            ),
            key_id=str(document["key_id"]),
            signature=str(document["signature"]),
        )


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a public key: the start of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_head(head: TreeHead, *, key: Ed25519PrivateKey) -> SignedHead:
    """Sign a head's canonical bytes."""
    signature = key.sign(head.signing_bytes())
    return SignedHead(head=head, key_id=key_id(key.public_key()), signature=base64.b64encode(signature).decode())


def head_signature_holds(signed: SignedHead, *, public_key: Ed25519PublicKey) -> bool:
    """True when the head was signed by the holder of this public key and not changed since."""
    if signed.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(base64.b64decode(signed.signature, validate=True), signed.head.signing_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The audit signing key from its file, created (mode 0600) on first use; refuses a file others can read."""

    def make() -> bytes:
        key = Ed25519PrivateKey.generate()
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    loaded = serialization.load_pem_private_key(
        load_or_create_secret(path, make=make, what="signing key"), password=None
    )
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path.name} does not hold an Ed25519 private key")
    return loaded


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text."""
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class WitnessedEntry:
    """One ledger entry as the witness log saw it when it was first checkpointed."""

    school_sequence: int
    event_id: str
    entry_hash: str


@dataclass(frozen=True)
class WitnessRecord:
    """One line of the witness log: a signed head and the entries it added to the tree."""

    signed: SignedHead
    entries: Sequence[WitnessedEntry] = field(default_factory=tuple)

    def to_line(self) -> str:
        document = self.signed.document()
        document["entries"] = [[e.school_sequence, e.event_id, e.entry_hash] for e in self.entries]
        return json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> WitnessRecord:
        document = json.loads(line)
        entries = tuple(WitnessedEntry(int(s), str(i), str(h)) for s, i, h in document.get("entries", ()))
        return cls(signed=SignedHead.from_document(document), entries=entries)


class WitnessLog:
    """An append-only JSON Lines file of signed heads, meant to be copied off the machine."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: WitnessRecord) -> None:
        """Write one line and make sure it reached the disk before the head is published."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(record.to_line())
            file.flush()
            os.fsync(file.fileno())

    def records(self, *, school_id: str | None = None) -> Iterator[WitnessRecord]:
        """Every record in file order (one school's, when given), read one line at a time."""
        for signed, entries in self.raw_records(school_id=school_id):
            witnessed = tuple(WitnessedEntry(int(s), str(i), str(h)) for s, i, h in entries)
            yield WitnessRecord(signed=signed, entries=witnessed)

    def raw_records(self, *, school_id: str | None = None) -> Iterator[tuple[SignedHead, list[list[Any]]]]:
        """Like `records`, each record's entries left as read: [sequence, event id, entry hash] lists (fast)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as file:
            for line in file:
                if not line.strip():
                    continue
                # Cheap pre-filter: a line that does not mention the school cannot be its head.
                if school_id is not None and f'"school_id":"{school_id}"' not in line:
                    continue
                document = json.loads(line)
                signed = SignedHead.from_document(document)
                if school_id is None or signed.head.school_id == school_id:
                    yield signed, list(document.get("entries", ()))

    def latest_heads(self) -> dict[str, SignedHead]:
        """The last head written for each school."""
        latest: dict[str, SignedHead] = {}
        for record in self.records():
            latest[record.signed.head.school_id] = record.signed
        return latest
