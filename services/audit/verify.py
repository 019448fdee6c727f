"""Verify a school's ledger against its signed heads, in one pass and constant memory; pure, no I/O.

Fed the entries in chain order and the witness log's records in file order, `LedgerVerifier` recomputes every
entry hash, the chain links and the Merkle tree; checks each head's signature, its link to the head before and
its root against the tree rebuilt from the ledger at that size; and compares each entry with what the witness
saw when it was checkpointed. It stops at the first thing wrong and names it: the entry (by sequence), and
whether it was edited, is missing, was inserted, reordered, cut off the end (truncated), or a head is forged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.domain import GENESIS, ChainEntry, entry_hash
from services.audit.heads import SignedHead, WitnessedEntry, WitnessRecord, head_signature_holds
from services.audit.merkle import MerkleTree, entry_leaf


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


def _event_id(entry: ChainEntry) -> str:
    return str(entry.event.get("event_id"))


class _Witness:
    """Reads the witness records lazily, checking each head as it comes, and answers 'what was at sequence s'."""

    def __init__(self, records: Iterable[WitnessRecord], *, public_key: Ed25519PublicKey) -> None:
        self._records: Iterator[WitnessRecord] = iter(records)
        self._public_key = public_key
        self._entries: deque[WitnessedEntry] = deque()
        self.heads: deque[SignedHead] = deque()  # read, not yet reached by the ledger's tree
        self._tree = MerkleTree()  # the tree the witness alone rebuilds
        self._previous: SignedHead | None = None
        self.count = 0

    def _read(self) -> bool:
        record = next(self._records, None)
        if record is None:
            return False
        signed, head = record.signed, record.signed.head
        if not head_signature_holds(signed, public_key=self._public_key):
            raise _Found(
                Problem(
                    "forged head",
                    None,
                    f"the head over {head.tree_size} entries at {head.timestamp} is not signed by the audit key",
                )
            )
        expected_previous = self._previous.ref if self._previous else None
        if head.previous != expected_previous or (self._previous and head.tree_size < self._previous.head.tree_size):
            raise _Found(
                Problem("forged head", None, f"the head over {head.tree_size} entries does not follow the one before")
            )
        for witnessed in record.entries:
            if witnessed.school_sequence != self._tree.size + 1:
                raise _Found(Problem("forged head", witnessed.school_sequence, "the witness log skips an entry"))
            self._tree.append(entry_leaf(witnessed.entry_hash))
            self._entries.append(witnessed)
        if self._tree.size == head.tree_size and self._tree.root().hex() != head.root_hash:
            raise _Found(Problem("forged head", None, f"the head over {head.tree_size} entries disagrees with its log"))
        self._previous = signed
        self.heads.append(signed)
        self.count += 1
        return True

    def at(self, sequence: int) -> WitnessedEntry | None:
        """What the witness saw at `sequence`, or None when it has not seen that far."""
        while (not self._entries or self._entries[-1].school_sequence < sequence) and self._read():
            pass
        while self._entries and self._entries[0].school_sequence < sequence - 1:
            self._entries.popleft()  # one behind is kept: a lookup may ask for s and s+1 in turn
        return next((e for e in self._entries if e.school_sequence == sequence), None)

    def read_all(self) -> None:
        while self._read():
            pass


class LedgerVerifier:
    """Push entries in chain order with `add`, then `finish` for the report."""

    def __init__(self, *, school_id: str, witness: Iterable[WitnessRecord], public_key: Ed25519PublicKey) -> None:
        self.school_id = school_id
        self._witness = _Witness(witness, public_key=public_key)
        self._tree = MerkleTree()
        self._tip = GENESIS
        self._anchored = 0
        self._pending: ChainEntry | None = None
        self.problem: Problem | None = None

    def add(self, entry: ChainEntry) -> bool:
        """Take the next entry; False once a problem is found (the rest need not be read)."""
        if self.problem is not None:
            return False
        if self._pending is not None:
            self._check(self._pending, following=entry)
        self._pending = entry
        return self.problem is None

    def finish(self) -> Report:
        if self.problem is None:
            if self._pending is not None:
                self._check(self._pending, following=None)
                self._pending = None
            if self.problem is None:
                self._check_the_end()
        return Report(self.school_id, self._tree.size, self._witness.count, self._anchored, self.problem)

    def _check(self, entry: ChainEntry, *, following: ChainEntry | None) -> None:
        try:
            self._check_entry(entry, following=following)
            self._reach_heads()
        except _Found as found:
            self.problem = found.problem

    def _check_entry(self, entry: ChainEntry, *, following: ChainEntry | None) -> None:
        expected = self._tree.size + 1
        if entry.school_sequence != expected:
            detail = f"the chain jumps from {expected - 1} to {entry.school_sequence}: entry {expected} was removed"
            raise _Found(Problem("missing", expected, detail))
        recomputed = entry_hash(previous_hash=entry.previous_hash, school_sequence=expected, event=entry.event)
        witnessed = self._witness.at(expected)
        if witnessed is not None and (_event_id(entry), recomputed) != (witnessed.event_id, witnessed.entry_hash):
            raise _Found(self._unlike_witness(entry, witnessed, following=following))
        if recomputed != entry.entry_hash:
            raise _Found(Problem("edited", expected, "its content no longer matches its stored hash"))
        if entry.previous_hash != self._tip:
            raise _Found(
                Problem("broken chain", expected, "it does not follow the entry before (one was changed or removed)")
            )
        self._tip = entry.entry_hash
        self._tree.append(entry_leaf(recomputed))

    def _unlike_witness(self, entry: ChainEntry, witnessed: WitnessedEntry, *, following: ChainEntry | None) -> Problem:
        sequence, event_id = entry.school_sequence, _event_id(entry)
        if event_id == witnessed.event_id:
            return Problem("edited", sequence, "its content differs from what the witness log recorded")
        witnessed_next = self._witness.at(sequence + 1)
        moved_up = witnessed_next is not None and event_id == witnessed_next.event_id
        moved_down = following is not None and _event_id(following) == witnessed.event_id
        if moved_up and moved_down:
            return Problem("reordered", sequence, f"it changed places with entry {sequence + 1}")
        if moved_up:
            return Problem("missing", sequence, f"event {witnessed.event_id} was removed and the rest renumbered")
        if moved_down:
            return Problem("inserted", sequence, f"event {event_id} was put in that the witness never saw")
        return Problem("reordered", sequence, f"it holds event {event_id}; the witness log has {witnessed.event_id}")

    def _reach_heads(self) -> None:
        heads = self._witness.heads
        while heads and heads[0].head.tree_size <= self._tree.size:
            signed = heads.popleft()
            if signed.head.tree_size < self._tree.size:
                continue  # passed already: an empty-growth head, or one for size 0
            if self._tree.root().hex() != signed.head.root_hash:
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
