"""What bounds audit's verify and replay, measured in memory over a sample of the synthetic ledger (no I/O).

Three rates over the same entries, one thread each, so a bench run can say what limits the real paths:

- raw SHA-256: hashlib once per entry over the stored entry bytes (the faster of a Python loop and `map`);
- verify's hashing: exactly the work verify does per chunk once the rows are in memory (`chunk_digests`: the
  entry hash, chain and stored-hash checks; `BulkTree.add`: witness comparison, RFC 9162 leaf hash, the tree's
  interior nodes, the signed heads reached);
- replay's parsing and folding: `EventReader.read` (type from the tail, pydantic from the bytes) and the case
  aggregate's `apply` for every event.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.bulk_verify import BulkTree, RawRecord, chunk_digests
from services.audit.domain import split_entry
from services.audit.heads import WitnessRecord
from services.audit.keyring import SchoolKeys
from services.audit.ledger_events import EventReader
from services.audit.reading import ENTRY_CHUNK
from services.audit.replay import CaseFolder

SAMPLE = 100_000


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def sha256_rate(entries: Sequence[bytes]) -> float:
    """Entries a second hashlib hashes once each, one thread."""
    sha256 = hashlib.sha256
    digest = type(sha256()).digest

    def looped() -> None:
        for entry in entries:
            sha256(entry).digest()

    return len(entries) / min(_seconds(looped), _seconds(lambda: list(map(digest, map(sha256, entries)))))


def raw_witness(records: Iterable[WitnessRecord]) -> list[RawRecord]:
    """Witness records as the witness log's reader hands them to the bulk verifier."""
    return [(r.signed, [[e.school_sequence, e.event_id, e.entry_hash] for e in r.entries]) for r in records]


def verify_hashing_rate(
    entries: Sequence[bytes], hashes: Sequence[str], *, witness: list[RawRecord], public_key: Ed25519PublicKey
) -> float:
    """Entries a second verify's own checks get through when the rows are already in memory (1 process)."""

    def verify() -> None:
        tree = BulkTree(school_id="bench-school", witness=iter(witness), public_key=public_key)
        for first in range(1, len(entries) + 1, ENTRY_CHUNK):
            last = min(first + ENTRY_CHUNK - 1, len(entries))
            chunk = range(first, last + 1), entries[first - 1 : last], hashes[first - 1 : last]
            witnessed = tree.witnessed_through(last)
            digests, hexes, before = chunk_digests(first, *chunk, witnessed=witnessed)
            tree.add(first, digests, hexes, before=before)

    return len(entries) / _seconds(verify)


def replay_parsing_rate(entries: Sequence[bytes]) -> float:
    """Events a second replay parses from their bytes and folds through the case aggregate's `apply`."""
    canonicals = [split_entry(entry)[2] for entry in entries]

    def replay() -> None:
        folder = CaseFolder()
        reader = EventReader(SchoolKeys("bench-school", school_key=None, wrapped={}), wanted=folder.wanted)
        for canonical in canonicals:
            event = reader.read(canonical)
            if event is not None:
                folder.add_event(event)

    return len(entries) / _seconds(replay)
