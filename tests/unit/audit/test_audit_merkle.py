"""The Merkle tree agrees with RFC 6962/9162's published vectors and with a brute-force reading of the RFC.

The reference data (leaves, subtree roots) are the Certificate Transparency test vectors as published in
transparency-dev/merkle `testonly/constants.go`; the brute-force functions below transcribe the RFC's recursive
definitions (MTH, PATH, SUBPROOF) directly, independently of the streaming code under test.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    leaf_hashes,
    root_of,
    subtree_roots,
    verify_consistency,
    verify_inclusion,
)

CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Named subtree roots of the 8-leaf reference tree: level 0 leaves, level 1 pairs, level 2 quads.
L0 = ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]  # leaf 1
L0_4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"  # leaf 4
P01 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
P23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
P45 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
P67 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
Q0 = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
Q1 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"

# (leaf index, tree size, proof) from the CT test vectors (which number leaves from 1; here from 0).
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [L0[0], P23, Q1]),
    (5, 8, [L0_4, P67, Q0]),
    (2, 3, [P01]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", P23, L0_4]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [L0[0], P23, Q1]),
    (6, 8, [P45, P67, Q0]),
    (2, 5, [P23, L0_4]),
]


def _brute_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _brute_root(leaves[:k]) + _brute_root(leaves[k:])).digest()


def _brute_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_brute_path(m, leaves[:k]), _brute_root(leaves[k:])]
    return [*_brute_path(m - k, leaves[k:]), _brute_root(leaves[:k])]


def _brute_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [_brute_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_brute_subproof(m, leaves[:k], whole), _brute_root(leaves[k:])]
    return [*_brute_subproof(m - k, leaves[k:], False), _brute_root(leaves[:k])]


def _proof(ranges: list[tuple[int, int]], leaves: list[bytes], size: int) -> list[bytes]:
    roots = subtree_roots(iter(leaves), size=size, wanted=ranges)
    return [roots[r] for r in ranges]


CT_LEAF_HASHES = [leaf_hash(leaf) for leaf in CT_LEAVES]
MANY = [leaf_hash(i.to_bytes(4, "big")) for i in range(70)]


@pytest.mark.parametrize("size", range(9))
def test_tree_heads_match_the_rfc_vectors(size: int) -> None:
    assert root_of(CT_LEAF_HASHES[:size]).hex() == CT_ROOTS[size]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert MerkleTree().root() == EMPTY_ROOT == bytes.fromhex(CT_ROOTS[0])


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_match_the_rfc_vectors(index: int, size: int, expected: list[str]) -> None:
    proof = _proof(inclusion_ranges(index, size), CT_LEAF_HASHES, size)
    assert [p.hex() for p in proof] == expected
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAF_HASHES[index], index=index, size=size, proof=proof, root=root)


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_rfc_vectors(old: int, new: int, expected: list[str]) -> None:
    proof = _proof(consistency_ranges(old, new), CT_LEAF_HASHES, new)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old_root, old_size=old, new_size=new, new_root=new_root, proof=proof)


def test_streaming_roots_agree_with_the_brute_force_definition_at_every_size() -> None:
    tree = MerkleTree()
    for size, leaf in enumerate(MANY, start=1):
        tree.append(leaf)
        assert tree.size == size
        assert tree.root() == _brute_root(MANY[:size])


@pytest.mark.parametrize("size", range(1, 40))
def test_every_inclusion_proof_is_the_rfcs_and_verifies(size: int) -> None:
    leaves, root = MANY[:size], _brute_root(MANY[:size])
    for index in range(size):
        proof = _proof(inclusion_ranges(index, size), leaves, size)
        assert proof == _brute_path(index, leaves)
        assert verify_inclusion(leaves[index], index=index, size=size, proof=proof, root=root)


@pytest.mark.parametrize("new", range(1, 40))
def test_every_consistency_proof_is_the_rfcs_and_verifies(new: int) -> None:
    leaves, new_root = MANY[:new], _brute_root(MANY[:new])
    for old in range(1, new + 1):
        proof = _proof(consistency_ranges(old, new), leaves, new)
        assert proof == _brute_subproof(old, leaves, True)
        old_root = _brute_root(MANY[:old])
        assert verify_consistency(old_root, old_size=old, new_size=new, new_root=new_root, proof=proof)


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


@pytest.mark.parametrize("size", [2, 3, 5, 8, 13, 32, 33])
def test_a_lying_server_cannot_pass_off_a_forged_inclusion_proof(size: int) -> None:
    leaves, root = MANY[:size], _brute_root(MANY[:size])
    for index in range(size):
        proof = _proof(inclusion_ranges(index, size), leaves, size)
        honest = {"leaf": leaves[index], "index": index, "size": size, "proof": proof, "root": root}
        forgeries = [
            {**honest, "leaf": MANY[size]},  # an entry that was never logged
            {**honest, "index": (index + 1) % size},  # a real entry moved to another place
            {**honest, "index": size},  # a place beyond the signed tree
            {**honest, "proof": proof[:-1]},  # a path cut short
            {**honest, "proof": [*proof, root]},  # a path padded
            {**honest, "proof": [*proof[:-1], _flip(proof[-1])]},  # one sibling changed
            {**honest, "root": _flip(root)},  # some other head
            {**honest, "proof": list(reversed(proof))} if len(proof) > 1 else {**honest, "leaf": root},
        ]
        for forged in forgeries:
            assert not verify_inclusion(
                forged["leaf"],  # type: ignore[arg-type]
                index=forged["index"],  # type: ignore[arg-type]
                size=forged["size"],  # type: ignore[arg-type]
                proof=forged["proof"],  # type: ignore[arg-type]
                root=forged["root"],  # type: ignore[arg-type]
            ), forged


@pytest.mark.parametrize("new", [3, 5, 8, 13, 33])
def test_a_lying_server_cannot_pass_off_a_rewritten_history_as_consistent(new: int) -> None:
    leaves, new_root = MANY[:new], _brute_root(MANY[:new])
    rewritten = [*MANY[: new // 2], leaf_hash(b"inserted"), *MANY[new // 2 + 1 : new]]
    for old in range(1, new):
        old_root = _brute_root(MANY[:old])
        proof = _proof(consistency_ranges(old, new), leaves, new)

        def accepts(
            old_root: bytes = old_root, new_root: bytes = new_root, proof: list[bytes] = proof, old: int = old
        ) -> bool:
            return verify_consistency(old_root, old_size=old, new_size=new, new_root=new_root, proof=proof)

        assert accepts()
        assert not accepts(new_root=_brute_root(rewritten))
        assert not accepts(old_root=_flip(old_root))
        assert not accepts(proof=[_flip(proof[0]), *proof[1:]])
        assert not accepts(proof=proof[:-1])
        assert not accepts(proof=[])
        # A proof honestly made for the rewritten log does not link it to the old head either.
        if old > new // 2:
            lie = _proof(consistency_ranges(old, new), rewritten, new)
            assert not accepts(new_root=_brute_root(rewritten), proof=lie)


def test_subtree_roots_refuses_ranges_that_are_not_nodes_of_the_tree() -> None:
    with pytest.raises(ValueError, match="not subtrees"):
        subtree_roots(iter(MANY[:8]), size=8, wanted=[(1, 3)])
    with pytest.raises(ValueError, match="not 9"):
        subtree_roots(iter(MANY[:8]), size=9, wanted=[])


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8))
def test_extending_in_blocks_grows_the_same_tree_as_appending_each_leaf(blocks: list[int]) -> None:
    one, bulk, made = MerkleTree(), MerkleTree(), 0
    for count in blocks:
        leaves = [hashlib.sha256(b"%d" % (made + i)).digest() for i in range(count)]
        made += count
        for leaf in leaves:
            one.append(leaf)
        bulk.extend(leaves)
        assert (bulk.size, bulk.root()) == (one.size, one.root())
    assert leaf_hashes([b"a", b"b"]) == [leaf_hash(b"a"), leaf_hash(b"b")]
