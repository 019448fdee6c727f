"""Verify a school's ledger against its signed heads, in one pass and constant memory; pure, no I/O.

Fed the entries in chain order and the witness log's records in file order, `LedgerVerifier` recomputes every
entry hash, the chain links and the Merkle tree; checks each head's signature, its link to the head before and
its root against the tree rebuilt from the ledger at that size; and compares each entry with what the witness
saw when it was checkpointed. It stops at the first thing wrong and names it: the entry (by sequence), and
whether it was edited, is missing, was inserted, reordered, cut off the end (truncated), or a head is forged.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.domain import GENESIS, ChainEntry, canonical_entry_digest, canonical_json
from services.audit.heads import SignedHead, WitnessedEntry, WitnessRecord, head_signature_holds
from services.audit.merkle import MerkleTree, leaf_hash


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: what, where (entry sequence, when known) and why."""

    kind: str  # edited | missing | inserted | reordered | truncated | broken chain | rewritten | forged head
    school_sequence: int | None
    detail: str

    def __str__(self) -> str:
        where = f"entry {self.school_sequence}" if self.school_sequence is not None else "heads"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Report:
    school_id: str
    entries: int
    heads: int
    anchored: int  # entries covered by a signed head
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Found(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class _Witness:
    """Reads the witness records lazily, checking each head as it comes, and answers 'what was at sequence s'."""

    def __init__(self, records: Iterable[WitnessRecord], *, public_key: Ed25519PublicKey) -> None:
        self._records: Iterator[WitnessRecord] = iter(records)
        self._public_key = public_key
        self._entries: list[WitnessedEntry] = []
        self._first = 1  # sequence of _entries[0]
        self.seen = 0  # highest sequence the witness has recorded
        self.heads: deque[SignedHead] = deque()  # read, not yet reached by the ledger's tree
        self._previous: SignedHead | None = None
        self.count = 0

    def _read(self) -> bool:
        record = next(self._records, None)
        if record is None:
            return False
        signed, head = record.signed, record.signed.head
        if not head_signature_holds(signed, public_key=self._public_key):
            detail = f"the head over {head.tree_size} entries at {head.timestamp} is not signed by the audit key"
            raise _Found(Problem("forged head", None, detail))
        expected_previous = self._previous.ref if self._previous else None
        if head.previous != expected_previous or (self._previous and head.tree_size < self._previous.head.tree_size):
            detail = f"the head over {head.tree_size} entries does not follow the one before"
            raise _Found(Problem("forged head", None, detail))
        for witnessed in record.entries:
            if witnessed.school_sequence != self.seen + 1:
                raise _Found(Problem("forged head", witnessed.school_sequence, "the witness log skips an entry"))
            self.seen += 1
        self._entries.extend(record.entries)
        self._previous = signed
        self.heads.append(signed)
        self.count += 1
        return True

    def at(self, sequence: int) -> WitnessedEntry | None:
        """What the witness saw at `sequence`, or None when it has not seen that far."""
        offset = sequence - self._first
        if 0 <= offset <= 4096 and offset < len(self._entries):
            return self._entries[offset]  # the usual case, answered at once
        while self.seen < sequence and self._read():
            pass
        offset = sequence - self._first
        if offset > 4096:  # forget what is well behind, a block at a time (one behind may still be asked for)
            del self._entries[: offset - 1]
            self._first += offset - 1
            offset = 1
        return self._entries[offset] if 0 <= offset < len(self._entries) else None

    def read_all(self) -> None:
        while self._read():
            pass


class _Entry(NamedTuple):
    school_sequence: int
    canonical: bytes  # the event's canonical JSON, exactly the bytes its hash covers
    previous_hash: str
    entry_hash: str

    @property
    def event_id(self) -> str:
        return str(json.loads(self.canonical).get("event_id"))  # only read when something is already wrong


class LedgerVerifier:
    """Push entries in chain order with `add` (or `add_canonical`), then `finish` for the report."""

    def __init__(self, *, school_id: str, witness: Iterable[WitnessRecord], public_key: Ed25519PublicKey) -> None:
        self.school_id = school_id
        self._witness = _Witness(witness, public_key=public_key)
        self._tree = MerkleTree()
        self._tip = GENESIS
        self._anchored = 0
        self._all_witnessed = True  # every entry so far was compared with (and matched) the witness log
        self._suspect: tuple[_Entry, WitnessedEntry] | None = None  # unlike the witness; the next entry says how
        self.problem: Problem | None = None

    def add(self, entry: ChainEntry) -> bool:
        """Take the next entry; False once a problem is found (the rest need not be read)."""
        return self.add_canonical(
            entry.school_sequence,
            canonical_json(entry.event) if entry.canonical is None else entry.canonical,
            previous_hash=entry.previous_hash,
            stored=entry.entry_hash,
        )

    def add_canonical(self, school_sequence: int, canonical: bytes, *, previous_hash: str, stored: str) -> bool:
        """Take the next entry as its event's canonical bytes (no re-serialising): the fast path."""
        if self._suspect is not None:
            self._classify(following=_Entry(school_sequence, canonical, previous_hash, stored))
        if self.problem is not None:
            return False
        try:
            self._check_entry(school_sequence, canonical, previous_hash, stored)
        except _Found as found:
            self.problem = found.problem
        return self.problem is None

    def add_digest(self, school_sequence: int, digest: bytes) -> bool:
        """Take an entry whose hash, stored hash and chain link were checked already (the parallel path).

        Grows the tree, compares with the witness and checks the heads reached. False when anything disagrees,
        without naming it: the caller then verifies the slow way (`add`), which does.
        """
        expected = self._tree.size + 1
        if school_sequence != expected or self.problem is not None or self._suspect is not None:
            return False
        recomputed = digest.hex()
        witnessed = self._witness.at(expected)
        if witnessed is None:
            self._all_witnessed = False
        elif recomputed != witnessed.entry_hash:
            return False
        self._tip = recomputed
        self._tree.append(leaf_hash(digest))
        heads = self._witness.heads
        if heads and heads[0].head.tree_size <= expected:
            try:
                self._reach_heads()
            except _Found:
                return False
        return True

    @property
    def tip(self) -> str:
        """The hash of the last entry taken (GENESIS before the first)."""
        return self._tip

    def finish(self) -> Report:
        if self._suspect is not None:
            self._classify(following=None)
        if self.problem is None:
            self._check_the_end()
        return Report(self.school_id, self._tree.size, self._witness.count, self._anchored, self.problem)

    def _check_entry(self, sequence: int, canonical: bytes, previous_hash: str, stored: str) -> None:
        # Called once per entry: plain arguments, no objects made unless something is wrong.
        tree = self._tree
        expected = tree.size + 1
        if sequence != expected:
            if sequence is None or sequence < expected:  # a number below 1, or one the chain has used already
                detail = f"an entry numbered {sequence} where {expected} was due: it was put in beside the chain"
                raise _Found(Problem("inserted", expected, detail))
            detail = f"the chain jumps from {expected - 1} to {sequence}: entry {expected} was removed"
            raise _Found(Problem("missing", expected, detail))
        digest = canonical_entry_digest(previous_hash, expected, canonical)
        recomputed = digest.hex()
        witnessed = self._witness.at(expected)
        if witnessed is None:
            self._all_witnessed = False
        elif recomputed != witnessed.entry_hash:
            self._suspect = (_Entry(sequence, canonical, previous_hash, stored), witnessed)
            return
        if recomputed != stored:
            raise _Found(Problem("edited", expected, "its content no longer matches its stored hash"))
        if previous_hash != self._tip:
            raise _Found(
                Problem("broken chain", expected, "it does not follow the entry before (one was changed or removed)")
            )
        self._tip = recomputed
        tree.append(leaf_hash(digest))
        heads = self._witness.heads
        if heads and heads[0].head.tree_size <= expected:
            self._reach_heads()

    def _classify(self, *, following: _Entry | None) -> None:
        assert self._suspect is not None
        (entry, witnessed), self._suspect = self._suspect, None
        sequence, event_id = entry.school_sequence, entry.event_id
        if event_id == witnessed.event_id:
            self.problem = Problem("edited", sequence, "its content differs from what the witness log recorded")
            return
        witnessed_next = self._witness.at(sequence + 1)
        moved_up = witnessed_next is not None and event_id == witnessed_next.event_id
        moved_down = following is not None and following.event_id == witnessed.event_id
        if moved_up and moved_down:
            self.problem = Problem("reordered", sequence, f"it changed places with entry {sequence + 1}")
        elif moved_up:
            self.problem = Problem("missing", sequence, f"event {witnessed.event_id} was removed, the rest renumbered")
        elif moved_down:
            self.problem = Problem("inserted", sequence, f"event {event_id} was put in that the witness never saw")
        else:
            detail = f"it holds event {event_id}; the witness log has {witnessed.event_id}"
            self.problem = Problem("reordered", sequence, detail)

    def _reach_heads(self) -> None:
        heads = self._witness.heads
        while heads and heads[0].head.tree_size <= self._tree.size:
            signed = heads.popleft()
            if signed.head.tree_size < self._tree.size:
                continue  # passed already: an empty-growth head, or one for size 0
            if self._tree.root().hex() != signed.head.root_hash:
                if self._all_witnessed:  # the ledger matches the witness log entry for entry: the log lies
                    detail = f"the head over {signed.head.tree_size} entries disagrees with its own witness log"
                    raise _Found(Problem("forged head", None, detail))
                first = self._anchored + 1
                detail = f"entries {first}..{self._tree.size} do not rebuild the head signed at {signed.head.timestamp}"
                raise _Found(Problem("rewritten", first, detail))
            self._anchored = signed.head.tree_size

    def _check_the_end(self) -> None:
        try:
            self._witness.read_all()
            self._reach_heads()
            heads = self._witness.heads
            while heads:
                signed = heads.popleft()
                if signed.head.tree_size > self._tree.size:
                    detail = (
                        f"the head signed at {signed.head.timestamp} covers {signed.head.tree_size} entries; "
                        f"the ledger ends at {self._tree.size}"
                    )
                    raise _Found(Problem("truncated", self._tree.size + 1, detail))
        except _Found as found:
            self.problem = found.problem


def verify_entries(
    entries: Iterable[ChainEntry], *, school_id: str, witness: Iterable[WitnessRecord], public_key: Ed25519PublicKey
) -> Report:
    """Verify a school's whole ledger from an iterable of its entries."""
    verifier = LedgerVerifier(school_id=school_id, witness=witness, public_key=public_key)
    for entry in entries:
        if not verifier.add(entry):
            break
    return verifier.finish()
