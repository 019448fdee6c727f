"""Verify a school's ledger a chunk at a time: pure, no I/O, and strict — anything odd sends it to the slow path.

`chunk_digests` hashes a chunk's stored entry bytes (exactly what each entry hash covers) in bulk, and checks
that the sequences run on without a gap, that each recomputed hash is the stored one and that each entry's bytes
name the hash before it and its own sequence. `BulkTree` takes those digests in order, compares them with the
witness log, grows the Merkle tree and checks every signed head. Both answer only "all holds" or "something does
not": the caller then runs the one-process `LedgerVerifier`, which names the first bad entry. Whatever this module
passes, `LedgerVerifier` passes too; it never decides a problem itself.

Per entry that is three SHA-256 (the entry, its leaf, about one interior node), each called from C through
`map`, with no Python bytecode per entry: the cost is hashlib's, which is what the bench compares it with.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from hashlib import sha256
from operator import itemgetter
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.domain import GENESIS
from services.audit.heads import SignedHead, head_signature_holds
from services.audit.merkle import MerkleTree, leaf_hashes
from services.audit.verify import Report

_DIGEST = type(sha256()).digest
_PREFIX = b"%b\n%d\n".__mod__
RawRecord = tuple[SignedHead, list[list[Any]]]  # a witness line: the head and its [sequence, event id, hash]s


class Disagrees(Exception):
    """Something in the ledger or the witness log does not hold: verify it the slow way to name it."""


def chunk_digests(
    first: int, sequences: Sequence[int], entries: Sequence[bytes], stored: Sequence[str], *, witnessed: int = 0
) -> tuple[list[bytes], list[str], str]:
    """The digests (and their hex) of consecutive entries from `first`, and the hash the first one names before it.

    Raises Disagrees unless the sequences are `first, first + 1, …`, every recomputed hash equals its stored one
    and every entry's bytes begin with the hash before it and its own sequence. Entries up to sequence `witnessed`
    skip that last check: the caller compares their hashes with the witness log's, and a hash that matches what
    the witness saw proves the bytes, their beginning included (only the entries after the last head need it).
    """
    count = len(entries)
    if not count or list(sequences) != list(range(first, first + count)) or len(stored) != count:
        raise Disagrees
    digests = list(map(_DIGEST, map(sha256, entries)))
    hexes = list(map(bytes.hex, digests))
    if hexes != list(stored):
        raise Disagrees
    before = entries[0][:64]
    skip = min(max(witnessed - first + 1, 0), count)  # entries the witness vouches for
    if skip < count:
        links = itertools.chain(
            (before,) if skip == 0 else (), map(str.encode, itertools.islice(hexes, max(skip - 1, 0), count - 1))
        )
        starts = map(_PREFIX, zip(links, range(first + skip, first + count), strict=False))
        if not all(map(bytes.startswith, itertools.islice(entries, skip, None), starts)):
            raise Disagrees
    return digests, hexes, before.decode("ascii", "replace")


class BulkTree:
    """Takes each chunk's digests in chain order; compares with the witness, grows the tree, checks the heads."""

    def __init__(self, *, school_id: str, witness: Iterable[RawRecord], public_key: Ed25519PublicKey) -> None:
        self.school_id = school_id
        self._records: Iterator[RawRecord] = iter(witness)
        self._public_key = public_key
        self.tree = MerkleTree()
        self.tip = GENESIS
        self._hashes: list[str] = []  # what the witness saw, from sequence self._from
        self._from = 1
        self._seen = 0
        self._previous: SignedHead | None = None
        self._heads: deque[SignedHead] = deque()
        self._count = 0
        self._anchored = 0

    def witnessed_through(self, last: int) -> int:
        """The witness log read as far as sequence `last`: the last sequence it has an entry for (up to `last`)."""
        while self._seen < last and self._read():
            pass
        return min(self._seen, last)

    def add(
        self, first: int, digests: list[bytes], hexes: list[str], *, before: str, leaves: list[bytes] | None = None
    ) -> None:
        """The digests (and hex) of entries `first…`, the first naming `before` as the hash before it; Disagrees
        if not. `leaves`, when a worker made them already, are the digests' leaf hashes (`leaf_hashes(digests)`)."""
        if first != self.tree.size + 1 or before != self.tip or not digests or len(hexes) != len(digests):
            raise Disagrees
        self.witnessed_through(first + len(digests) - 1)
        offset = first - self._from
        witnessed = self._hashes[offset : offset + len(digests)]
        if witnessed != hexes[: len(witnessed)]:
            raise Disagrees
        del self._hashes[: offset + len(witnessed)]
        self._from = first + len(witnessed)
        self._grow(leaf_hashes(digests) if leaves is None else leaves)
        self.tip = hexes[-1]

    def finish(self) -> Report:
        """The report when everything held (every head read, none beyond the ledger); Disagrees otherwise."""
        while self._read():
            pass
        self._grow([])
        if self._heads:  # a head over more entries than the ledger holds
            raise Disagrees
        return Report(self.school_id, self.tree.size, self._count, self._anchored, None)

    def _grow(self, leaves: list[bytes]) -> None:
        done, heads, tree = 0, self._heads, self.tree
        while True:
            while heads and heads[0].head.tree_size <= tree.size:
                signed = heads.popleft()
                if signed.head.tree_size == tree.size:
                    if tree.root().hex() != signed.head.root_hash:
                        raise Disagrees
                    self._anchored = tree.size
            if done == len(leaves):
                return
            upto = len(leaves) if not heads else min(len(leaves), done + heads[0].head.tree_size - tree.size)
            tree.extend(leaves[done:upto])
            done = upto

    def _read(self) -> bool:
        record = next(self._records, None)
        if record is None:
            return False
        signed, entries = record
        head, previous = signed.head, self._previous
        if not head_signature_holds(signed, public_key=self._public_key):
            raise Disagrees
        if head.previous != (previous.ref if previous else None):
            raise Disagrees
        if previous and head.tree_size < previous.head.tree_size:
            raise Disagrees
        if list(map(itemgetter(0), entries)) != list(range(self._seen + 1, self._seen + 1 + len(entries))):
            raise Disagrees
        self._hashes.extend(map(itemgetter(2), entries))
        self._seen += len(entries)
        self._previous = signed
        self._heads.append(signed)
        self._count += 1
        return True


def split32(blob: bytes) -> list[bytes]:
    """32-byte hashes joined end to end, apart again (sliced in C)."""
    return list(map(blob.__getitem__, map(slice, range(0, len(blob), 32), range(32, len(blob) + 32, 32))))
