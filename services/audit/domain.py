"""The hash chain: pure functions over plain data, shared by appending and verifying."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


# Exactly what json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes, made once
# (json.dumps makes a new encoder on every call when given options). Without its check for circular references:
# that changes no byte of the output (a document is a tree of JSON values, never a cycle; one would now raise
# RecursionError instead of ValueError) and saves a dictionary insert and delete per object and list encoded.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
_DECODER = json.JSONDecoder()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """One byte form per document: sorted keys, no spaces, UTF-8."""
    return _CANONICAL.encode(document).encode()


def entry_hash(*, previous_hash: str, school_sequence: int, event: Mapping[str, Any]) -> str:
    """SHA-256 over the previous entry's hash, this entry's place in the chain and the event."""
    return canonical_entry_digest(previous_hash, school_sequence, canonical_json(event)).hex()


def entry_bytes(previous_hash: str, school_sequence: int, canonical: bytes) -> bytes:
    """Exactly the bytes an entry's hash covers (stored as the ledger's `entry`): previous hash, sequence, event."""
    return b"%s\n%d\n%s" % (previous_hash.encode(), school_sequence, canonical)


def split_entry(entry: bytes) -> tuple[str, int, bytes]:
    """(previous hash, sequence, the event's canonical bytes) of stored entry bytes; ValueError when malformed."""
    previous, sequence, canonical = entry.split(b"\n", 2)  # canonical JSON holds no raw newline
    if len(previous) != 64 or not sequence.isdigit():
        raise ValueError("not the bytes of a ledger entry")
    return previous.decode("ascii"), int(sequence), canonical


def event_of(entry: bytes) -> dict[str, Any]:
    """The event document stored entry bytes hold (what every reader reads: the bytes verify proves)."""
    document: dict[str, Any] = json.loads(split_entry(entry)[2])
    return document


# An event's canonical bytes as audit writes them begin with the envelope's first keys in sorted order: a match
# of this pattern is exactly what `event_id_in`'s key-by-key parse reads there (each string a whole JSON string:
# plain characters or JSON's own escapes), so its group is the id that parse returns. Anything else is parsed.
_PLAIN = r'[^"\\\x00-\x1f]*'  # a run of characters that need no escape (one loop in the matcher, not one per character)
_STRING = rf'"{_PLAIN}(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{{4}}){_PLAIN})*"'
_ENVELOPE_START = re.compile(
    rf'\{{"actor":\{{"id":{_STRING},"role":{_STRING}\}},"aggregate_id":{_STRING},'
    rf'"causation_id":(?:null|{_STRING}),"correlation_id":{_STRING},"event_id":"([0-9a-f-]{{36}})"'
)


def event_id_in(canonical: bytes) -> Any:
    """The top-level `event_id` of an event's canonical bytes, as `event_of(...).get("event_id")` gives it.

    Keys are sorted, so it follows a handful of short ones (actor, aggregate, causation, correlation): those are
    parsed and skipped, never searched for as text, so a value that merely contains the words cannot be taken for
    it, and the rest of the event is not decoded. Anything else (no such key, not an object) is decoded whole,
    and raises as decoding it always has."""
    try:
        text = canonical.decode()
        if start := _ENVELOPE_START.match(text):
            return start.group(1)
        at = 1 if text[0] == "{" else len(text)
        while text[at] == '"':
            key, at = _DECODER.raw_decode(text, at)
            if text[at] != ":":
                break
            value, at = _DECODER.raw_decode(text, at + 1)
            if key == "event_id":
                return value
            if text[at] != ",":
                break
            at += 1
    except (IndexError, ValueError):
        pass
    whole = json.loads(canonical)
    return whole.get("event_id")


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
    canonical: bytes | None = None  # the event's bytes as stored in the entry; None: the event's canonical form

    def hashed(self) -> bytes:
        """The bytes this entry's hash must be the SHA-256 of, at its place in the chain."""
        canonical = canonical_json(self.event) if self.canonical is None else self.canonical
        return entry_bytes(self.previous_hash, self.school_sequence, canonical)


def stored_entry(school_sequence: int, entry: bytes, entry_hash: str, *, decode: bool = True) -> ChainEntry:
    """A ledger row as a ChainEntry read from its entry bytes alone (event undecoded, `{}`, unless `decode`)."""
    try:
        previous, _, canonical = split_entry(entry)
    except ValueError:  # bytes that are no entry at all: they cannot hash to anything that was signed
        previous, canonical = "", entry
    event: Mapping[str, Any] = json.loads(canonical) if decode else {}
    return ChainEntry(school_sequence, event, previous, entry_hash, canonical)


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
        recomputed = hashlib.sha256(entry.hashed()).hexdigest()
        if recomputed != entry.entry_hash:
            breaks.append(ChainBreak(entry.school_sequence, "entry hash does not match its content"))
        expected_previous, expected_sequence = entry.entry_hash, entry.school_sequence + 1
    return breaks
