"""RFC 9162 Merkle trees over a school's ledger: pure, streaming, no I/O.

A leaf is one ledger entry. The leaf's data is the 32 raw bytes of the entry's chain hash
(`services.audit.domain.entry_hash`, hex-decoded): that hash already covers the event, its place in the chain and
the entry before, so a proof that a leaf is in a signed tree proves the entry's content and position too, and the
leaf stays the same size whatever the event. Leaf hash `H(0x00 || entry_hash)`, node `H(0x01 || left || right)`,
the empty tree's root `H("")`, H = SHA-256 (RFC 9162 section 2.1.1).

The tree is built from a stream: `MerkleTree` keeps only the roots of its complete subtrees (one per set bit of
the size), so a root over a million leaves holds about twenty hashes. Proofs are given as the ranges of leaves
whose subtree roots they list (`inclusion_ranges`, `consistency_ranges`); `subtree_roots` finds any set of those
in one pass over the leaves, and the `verify_*` functions check a proof with nothing but hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from hashlib import sha256

EMPTY_ROOT = hashlib.sha256(b"").digest()
Range = tuple[int, int]  # leaves [start, end) of the tree


def leaf_hash(entry: bytes) -> bytes:
    """The leaf hash of one entry: H(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: H(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def entry_leaf(entry_hash_hex: str) -> bytes:
    """The leaf hash of a ledger entry, from the entry's hex chain hash."""
    return leaf_hash(bytes.fromhex(entry_hash_hex))


class MerkleTree:
    """A tree grown one leaf at a time that remembers only its complete subtrees' roots."""

    __slots__ = ("_peaks", "size")

    def __init__(self) -> None:
        self._peaks: list[bytes] = []  # roots of the perfect subtrees, largest (leftmost) first
        self.size = 0

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash at the right edge."""
        peaks, carry = self._peaks, self.size
        while carry & 1:
            leaf = sha256(b"\x01" + peaks.pop() + leaf).digest()  # node_hash, inlined: this runs once per leaf
            carry >>= 1
        peaks.append(leaf)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes at once: the same tree as appending each, hashed a level at a time."""
        nodes = list(leaves)
        peaks, position, spare = self._peaks, self.size, []
        self.size += len(nodes)
        while nodes:
            if position & 1:  # the first node is a right child: its left sibling is the smallest peak
                nodes.insert(0, peaks.pop())
                position -= 1
            if len(nodes) & 1:
                spare.append(nodes.pop())  # no sibling yet: a peak of this height, right of the higher ones
            nodes = _parents(nodes)
            position >>= 1
        peaks.extend(reversed(spare))

    def root(self) -> bytes:
        """The tree head hash of the leaves so far (RFC 9162 MTH)."""
        if not self._peaks:
            return EMPTY_ROOT
        # An incomplete right edge hangs off the last perfect subtree: fold from the right.
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result

    def copy(self) -> MerkleTree:
        other = MerkleTree()
        other._peaks = list(self._peaks)
        other.size = self.size
        return other


_DIGEST = type(sha256()).digest
_NODE = b"\x01".__add__


def _parents(nodes: list[bytes]) -> list[bytes]:
    """The parent of each pair of nodes (an even number of them), hashed without a Python loop."""
    return list(map(_DIGEST, map(sha256, map(_NODE, map(bytes.__add__, nodes[0::2], nodes[1::2])))))


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """The leaf hash of each entry, in bulk."""
    return list(map(_DIGEST, map(sha256, map(b"\x00".__add__, entries))))


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The root over a stream of leaf hashes, in constant memory."""
    tree = MerkleTree()
    tree.extend(leaves)
    return tree.root()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size > 1): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose roots prove leaf `index` is in the tree of `size` leaves, leaf end first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose roots prove the tree of `old_size` is a prefix of the tree of `new_size`."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    start, end, whole = 0, new_size, True
    while old_size - start != end - start:
        k = _split(end - start)
        if old_size - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, whole = start + k, False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


class SubtreeCollector:
    """Finds the roots of wanted subtrees while leaves stream past, holding only the tree's complete subtrees.

    Every range a proof asks for is either a perfect, aligned subtree (seen whole the moment its last leaf
    arrives) or runs from a boundary between the complete subtrees to the size the proof is for (folded when
    the stream reaches that size). Ranges of trees of different sizes may be asked for together.
    """

    def __init__(self, wanted: Collection[Range]) -> None:
        self._want = set(wanted)
        self._ends = {end for _, end in self._want}
        self._peaks: list[tuple[int, bytes]] = []  # (start, root) of perfect subtrees
        self.size = 0
        self.found: dict[Range, bytes] = {}

    def add(self, leaf: bytes) -> None:
        want, position = self._want, self.size
        start, node, carry, width = position, leaf, position, 1
        if (start, start + 1) in want:
            self.found[(start, start + 1)] = node
        while carry & 1:
            left_start, left = self._peaks.pop()
            start, node, width = left_start, node_hash(left, node), width * 2
            carry >>= 1
            if (start, start + width) in want:
                self.found[(start, start + width)] = node
        self._peaks.append((start, node))
        self.size = end = position + 1
        if end in self._ends:
            right_edge: bytes | None = None
            for peak_start, peak in reversed(self._peaks):
                right_edge = peak if right_edge is None else node_hash(peak, right_edge)
                if (peak_start, end) in want:
                    self.found[(peak_start, end)] = right_edge

    def roots(self) -> dict[Range, bytes]:
        missing = self._want - self.found.keys()
        if missing:
            raise ValueError(f"not subtrees of the {self.size} leaves seen: {sorted(missing)[:5]}")
        return self.found


def subtree_roots(leaves: Iterable[bytes], *, size: int, wanted: Collection[Range]) -> dict[Range, bytes]:
    """The roots of the wanted subtrees, from one pass over the first `size` leaves."""
    collector = SubtreeCollector(wanted)
    for leaf in leaves:
        if collector.size == size:
            break
        collector.add(leaf)
    if collector.size != size:
        raise ValueError(f"the tree has {collector.size} leaves, not {size}")
    return collector.roots()


def verify_inclusion(leaf: bytes, *, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True when `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def verify_consistency(
    old_root: bytes, *, old_size: int, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when `proof` shows the tree (old_size, old_root) is a prefix of (new_size, new_root) (RFC 9162 2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_result, new_result = node_hash(node, old_result), node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = node_hash(new_result, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old_result == old_root and new_result == new_root
