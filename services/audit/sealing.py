"""Sealing personal fields in a ledger document with AES-256-GCM, and opening them again; pure, no I/O.

A sealed value replaces the field in place:

    {"sealed": "A256GCM", "kid": "case:…", "type": "str", "ct": "<base64: 12-byte nonce, ciphertext, tag>"}

The associated data binds the ciphertext to its school, its event id, its field path, its key's name and the
value's JSON type, so a ciphertext copied into another entry, another field or another school does not open: it
reads as tampered, never as data. A value whose key is gone (crypto-shredded) reads as erased. The ledger's
hashes are computed over the sealed document, so verifying needs no key and holds after shredding.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.audit.personal import Path

ALGORITHM = "A256GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
ERASED = "[erased]"
TAMPERED = "[tampered]"
_TYPES: dict[type, str] = {str: "str", int: "num", float: "num", bool: "bool", dict: "obj", list: "arr"}
_PLACEHOLDERS: dict[str, Any] = {"obj": {}, "arr": []}  # what an unreadable value reads as; None for num/bool
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def new_key() -> bytes:
    """A fresh 256-bit key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def aead_seal(key: bytes | AESGCM, plaintext: bytes, *, associated: bytes) -> bytes:
    """AES-256-GCM under a fresh random nonce: nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _cipher(key).encrypt(nonce, plaintext, associated)


def aead_open(key: bytes | AESGCM, sealed: bytes, *, associated: bytes) -> bytes:
    """The plaintext of `aead_seal`'s output; raises InvalidTag if anything (data, key, associated data) differs."""
    return _cipher(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)


def _cipher(key: bytes | AESGCM) -> AESGCM:
    return key if isinstance(key, AESGCM) else AESGCM(key)


def associated_data(*, school_id: str, event_id: str, path: Path, key_id: str, kind: str) -> bytes:
    """What a sealed value is bound to: its school, its entry's event id, its field path, its key and its type."""
    where = "/".join(map(str, path))
    # NUL never occurs in a stored document (PostgreSQL's JSONB refuses it), so the parts cannot run together.
    return f"safeguard-sealed/1\x00{school_id}\x00{event_id}\x00{where}\x00{key_id}\x00{kind}".encode()


def seal_value(
    value: Any, *, key: bytes | AESGCM, key_id: str, school_id: str, event_id: str, path: Path
) -> dict[str, str]:
    """The sealed form of one JSON value."""
    kind = _TYPES[type(value)]
    associated = associated_data(school_id=school_id, event_id=event_id, path=path, key_id=key_id, kind=kind)
    sealed = aead_seal(key, _JSON.encode(value).encode(), associated=associated)
    return {"sealed": ALGORITHM, "kid": key_id, "type": kind, "ct": binascii.b2a_base64(sealed, newline=False).decode()}


# A data key by name (or its cipher); None when shredded, b"" when its row does not unwrap.
KeyLookup = Callable[[str], "bytes | AESGCM | None"]


@dataclass
class Opened:
    """A document with its sealed values opened, and the paths that could not be: erased or tampered."""

    document: dict[str, Any]
    erased: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)


def open_value(
    envelope: Mapping[str, Any], *, key_for: KeyLookup, school_id: str, event_id: str, path: Path
) -> tuple[Any, str]:
    """The value and "opened"; else a placeholder and "erased" (its key is shredded) or "tampered" (it won't open)."""
    kind = str(envelope.get("type", "str"))
    key_id = str(envelope.get("kid", ""))
    key = key_for(key_id)
    if key is None:
        return _placeholder(kind, ERASED), "erased"
    try:
        associated = associated_data(school_id=school_id, event_id=event_id, path=path, key_id=key_id, kind=kind)
        plain = aead_open(key, base64.b64decode(str(envelope["ct"])), associated=associated)  # GCM checks it all
        return json.loads(plain), "opened"
    except (InvalidTag, ValueError, KeyError, TypeError):
        return _placeholder(kind, TAMPERED), "tampered"


def _placeholder(kind: str, text: str) -> Any:
    return text if kind == "str" else _PLACEHOLDERS.get(kind)


def seal_document(
    document: dict[str, Any],
    found: Iterable[tuple[Path, str]],
    *,
    keys: Mapping[str, bytes | AESGCM],
    school_id: str,
) -> dict[str, Any]:
    """Seal each (path, key id) of the document, in place; returns the document (keys may be ready ciphers)."""
    event_id = str(document["event_id"])
    ciphers: dict[str, AESGCM] = {}
    for path, key_id in found:
        cipher = ciphers.get(key_id) or ciphers.setdefault(key_id, _cipher(keys[key_id]))
        parent = _parent(document, path)
        parent[path[-1]] = seal_value(
            parent[path[-1]], key=cipher, key_id=key_id, school_id=school_id, event_id=event_id, path=path
        )
    return document


def open_document(document: dict[str, Any], *, key_for: KeyLookup, school_id: str) -> Opened:
    """Open every sealed value of the payload, in place (wherever it is: the field map may have changed since)."""
    opened = Opened(document)
    event_id = str(document.get("event_id"))
    for parent, name, path in _sealed(document):
        value, outcome = open_value(parent[name], key_for=key_for, school_id=school_id, event_id=event_id, path=path)
        parent[name] = value
        if outcome != "opened":
            getattr(opened, outcome).append(".".join(map(str, path)))
    return opened


def _sealed(document: dict[str, Any]) -> list[tuple[Any, str | int, Path]]:
    """(containing object, key or index, path) of each sealed value; only payloads carry personal fields."""
    found: list[tuple[Any, str | int, Path]] = []
    stack: list[tuple[Any, Path]] = [(document.get("payload"), ("payload",))]
    while stack:
        node, path = stack.pop()
        items = node.items() if type(node) is dict else enumerate(node) if type(node) is list else ()
        for name, child in items:
            if type(child) is dict and child.get("sealed") == ALGORITHM:
                found.append((node, name, (*path, name)))
            elif type(child) is dict or type(child) is list:
                stack.append((child, (*path, name)))
    return found


def _parent(document: dict[str, Any], path: Path) -> Any:
    node: Any = document
    for step in path[:-1]:
        node = node[step]
    return node
