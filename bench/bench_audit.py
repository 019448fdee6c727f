"""How fast audit verifies: entries per second beside raw hashlib SHA-256 over the same bytes, same run.

Run from the repository root:  .venv/bin/python bench/bench_audit.py [--entries 1000000]
Synthetic entries are made in chunks outside the timed sections (memory stays flat), with a signed head every
1,000 entries as checkpointing would write them. For each chunk the same canonical event bytes are timed three
ways: one SHA-256 per entry (the raw rate, the least any re-hashing verifier does); the hashes RFC 9162 and the
chain require and nothing else (chain hash, leaf hash, tree); and the full verifier (chain links, tree, witness
comparison, signed heads). A sample is also verified from decoded JSON documents, as read from JSONB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from services.audit.domain import GENESIS, ChainEntry, canonical_entry_digest, canonical_entry_hash  # noqa: E402
from services.audit.heads import TreeHead, WitnessedEntry, WitnessRecord, sign_head  # noqa: E402
from services.audit.merkle import MerkleTree, leaf_hash  # noqa: E402
from services.audit.verify import LedgerVerifier  # noqa: E402

SCHOOL = "st-marks"
CHUNK = 20_000
HEAD_EVERY = 1_000
SAMPLE = 50_000
TARGET = 0.80
TEMPLATE = (
    b'{"actor":{"id":"staff-%d","role":"designated_safeguarding_lead"},"aggregate_id":"case-%d",'
    b'"causation_id":null,"correlation_id":"00000000-0000-4000-8000-%012d","event_id":"00000000-0000-4000-9000-%012d",'
    b'"occurred_at":"2026-01-05T09:00:00+00:00","payload":{"case_id":"case-%d","note":"Synthetic action recorded '
    b'by the designated safeguarding lead after speaking with the class teacher.","step":%d},'
    b'"recorded_at":"2026-01-05T09:00:01+00:00","school_id":"st-marks","traceparent":null,'
    b'"type":"case.action_recorded","version":1}'
)
Chunk = list[tuple[int, bytes, str, str]]  # (sequence, canonical event, previous hash, entry hash)


class SyntheticLedger:
    """Makes the ledger chunk by chunk, with its witness records, outside the timed sections."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.records: deque[WitnessRecord] = deque()
        self._tree, self._tip, self._size = MerkleTree(), GENESIS, 0
        self._previous: str | None = None
        self._pending: list[WitnessedEntry] = []

    def chunk(self, count: int) -> Chunk:
        rows: Chunk = []
        for _ in range(count):
            self._size += 1
            n = self._size
            canonical = TEMPLATE % (n % 40, n // 10, n // 10, n, n // 10, n)
            digest = canonical_entry_hash(previous_hash=self._tip, school_sequence=n, canonical=canonical)
            rows.append((n, canonical, self._tip, digest))
            self._tip = digest
            self._tree.append(leaf_hash(bytes.fromhex(digest)))
            self._pending.append(WitnessedEntry(n, f"00000000-0000-4000-9000-{n:012d}", digest))
            if n % HEAD_EVERY == 0:
                self._sign()
        return rows

    def _sign(self) -> None:
        head = TreeHead(SCHOOL, self._tree.size, self._tree.root().hex(), "2026-01-05T09:00:00+00:00", self._previous)
        signed = sign_head(head, key=self.key)
        self.records.append(WitnessRecord(signed=signed, entries=tuple(self._pending)))
        self._previous, self._pending = signed.ref, []

    def witness(self) -> Iterator[WitnessRecord]:
        while self.records:
            yield self.records.popleft()


def raw_sha256(rows: Chunk) -> None:
    for _, canonical, _, _ in rows:
        hashlib.sha256(canonical).digest()


def rfc_floor(rows: Chunk, tree: MerkleTree) -> None:
    for sequence, canonical, previous, _ in rows:
        tree.append(leaf_hash(canonical_entry_digest(previous, sequence, canonical)))


def full_verify(rows: Chunk, verifier: LedgerVerifier) -> None:
    add = verifier.add_canonical
    for sequence, canonical, previous, digest in rows:
        if not add(sequence, canonical, previous_hash=previous, stored=digest):
            raise SystemExit(f"verification failed: {verifier.problem}")


def timed(step: object, *args: object) -> float:
    started = time.perf_counter()
    step(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    options = parser.parse_args()
    total = options.entries - options.entries % HEAD_EVERY
    ledger = SyntheticLedger()
    verifier = LedgerVerifier(school_id=SCHOOL, witness=ledger.witness(), public_key=ledger.key.public_key())
    floor_tree = MerkleTree()
    seconds = {"raw": 0.0, "floor": 0.0, "verify": 0.0, "decoded": 0.0}
    sample_verifier = LedgerVerifier(school_id=SCHOOL, witness=iter(()), public_key=ledger.key.public_key())
    made = 0
    while made < total:
        rows = ledger.chunk(min(CHUNK, total - made))
        seconds["raw"] += timed(raw_sha256, rows)
        seconds["floor"] += timed(rfc_floor, rows, floor_tree)
        seconds["verify"] += timed(full_verify, rows, verifier)
        if made < SAMPLE:
            documents = [ChainEntry(s, json.loads(c), p, d) for s, c, p, d in rows[: SAMPLE - made]]
            seconds["decoded"] += timed(lambda documents=documents: [sample_verifier.add(e) for e in documents])
        made += len(rows)
    report = verifier.finish()
    if not report.ok or report.anchored != total:
        raise SystemExit(f"verification failed: {report}")
    rates = {
        "raw": total / seconds["raw"],
        "floor": total / seconds["floor"],
        "verify": total / seconds["verify"],
        "decoded": min(SAMPLE, total) / seconds["decoded"],
    }
    print(f"audit verify over {total:,} synthetic entries ({len(TEMPLATE)}-byte events), {report.heads:,} signed heads")
    labels = {
        "raw": "raw hashlib SHA-256, one per entry",
        "floor": "chain + RFC 9162 hashes only (the floor)",
        "verify": "full verify, canonical bytes",
        "decoded": "full verify, from decoded JSON (sample)",
    }
    for name, label in labels.items():
        print(f"  {label:<42}{rates[name]:>12,.0f} entries/s   {rates[name] / rates['raw']:6.1%} of raw")
    print(f"  full verify vs the floor: {rates['verify'] / rates['floor']:.1%}")
    verdict = "meets" if rates["verify"] >= TARGET * rates["raw"] else "misses"
    print(f"  target: verify >= {TARGET:.0%} of raw SHA-256: {verdict}")


if __name__ == "__main__":
    main()
