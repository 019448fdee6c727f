"""The hash chain: pure functions over plain data, shared by appending and verifying."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """One byte form per document: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(*, previous_hash: str, school_sequence: int, event: Mapping[str, Any]) -> str:
    """SHA-256 over the previous entry's hash, this entry's place in the chain and the event."""
    return canonical_entry_digest(previous_hash, school_sequence, canonical_json(event)).hex()


def canonical_entry_hash(*, previous_hash: str, school_sequence: int, canonical: bytes) -> str:
    """The entry hash when the event's canonical bytes are already at hand (verifying skips re-serialising)."""
    return canonical_entry_digest(previous_hash, school_sequence, canonical).hex()


def canonical_entry_digest(previous_hash: str, school_sequence: int, canonical: bytes) -> bytes:
    """The entry hash as raw bytes (positional: verify calls it once per entry)."""
    return hashlib.sha256(b"%s\n%d\n%s" % (previous_hash.encode(), school_sequence, canonical)).digest()


@dataclass(frozen=True)
class ChainEntry:
    school_sequence: int
    event: Mapping[str, Any]
    previous_hash: str
    entry_hash: str


@dataclass(frozen=True)
class ChainBreak:
    school_sequence: int
    problem: str


def verify_chain(entries: Iterable[ChainEntry]) -> list[ChainBreak]:
    """Every place where the chain does not hold, in order; an empty list means it is intact."""
    breaks: list[ChainBreak] = []
    expected_previous, expected_sequence = GENESIS, 1
    for entry in entries:
        if entry.school_sequence != expected_sequence:
            breaks.append(ChainBreak(entry.school_sequence, f"expected sequence {expected_sequence}"))
        if entry.previous_hash != expected_previous:
            breaks.append(ChainBreak(entry.school_sequence, "previous hash does not match the entry before"))
        recomputed = entry_hash(
            previous_hash=entry.previous_hash, school_sequence=entry.school_sequence, event=entry.event
        )
        if recomputed != entry.entry_hash:
            breaks.append(ChainBreak(entry.school_sequence, "entry hash does not match its content"))
        expected_previous, expected_sequence = entry.entry_hash, entry.school_sequence + 1
    return breaks
