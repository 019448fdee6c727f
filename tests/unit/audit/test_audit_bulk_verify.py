"""The bulk verifier passes only what the entry-by-entry verifier passes, and gives the same report when it does."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.bulk_verify import BulkTree, Disagrees, chunk_digests
from services.audit.domain import ChainEntry, entry_bytes, split_entry, stored_entry
from services.audit.verify import Report, verify_entries
from services.bench.audit_bounds import raw_witness
from tests.support.ledgers import synthetic_chain, witness_over

KEY = Ed25519PrivateKey.generate()
SCHOOL = "st-bulk"
CHUNK = 7  # small, so tampering lands in every position of a chunk


def ledger(count: int = 30, every: int = 4) -> tuple[list[bytes], list[str], list]:  # type: ignore[type-arg]
    chain = list(synthetic_chain(count, school_id=SCHOOL))
    records = witness_over(chain[: count - 3], school_id=SCHOOL, key=KEY, every=every)  # the last 3 unanchored
    return [e.hashed() for e in chain], [e.entry_hash for e in chain], records


def bulk(entries: list[bytes], stored: list[str], records: list) -> Report:  # type: ignore[type-arg]
    tree = BulkTree(school_id=SCHOOL, witness=raw_witness(records), public_key=KEY.public_key())
    for first in range(1, len(entries) + 1, CHUNK):
        last = min(first + CHUNK - 1, len(entries))
        witnessed = tree.witnessed_through(last)
        chunk = range(first, last + 1), entries[first - 1 : last], stored[first - 1 : last]
        digests, hexes, before = chunk_digests(first, *chunk, witnessed=witnessed)
        tree.add(first, digests, hexes, before=before)
    return tree.finish()


def slow(entries: list[bytes], stored: list[str], records: list) -> Report:  # type: ignore[type-arg]
    rows = [stored_entry(n, e, h, decode=False) for n, (e, h) in enumerate(zip(entries, stored, strict=True), 1)]
    return verify_entries(rows, school_id=SCHOOL, witness=records, public_key=KEY.public_key())


def agree(entries: list[bytes], stored: list[str], records: list) -> Report:  # type: ignore[type-arg]
    """The slow verifier's report, having checked the bulk one gives it too or hands the ledger over."""
    report = slow(entries, stored, records)
    try:
        assert bulk(entries, stored, records) == report
    except Disagrees:
        assert not report.ok
    return report


def test_an_untouched_ledger_gets_the_same_report_both_ways() -> None:
    entries, stored, records = ledger()
    assert bulk(entries, stored, records) == slow(entries, stored, records)
    assert slow(entries, stored, records).anchored == 27


def rehashed(entries: list[bytes], *, at: int, canonical: bytes | None = None, sequence: int | None = None) -> tuple:  # type: ignore[type-arg]
    """The chain with entry `at` (1-based) rewritten and every hash from there recomputed, as an insider would."""
    out, previous = list(entries[: at - 1]), split_entry(entries[at - 1])[0]
    for n in range(at, len(entries) + 1):
        _, _, body = split_entry(entries[n - 1])
        if n == at and canonical is not None:
            body = canonical
        out.append(entry_bytes(previous, sequence if (n == at and sequence is not None) else n, body))
        previous = hashlib.sha256(out[-1]).hexdigest()
    return out, [hashlib.sha256(e).hexdigest() for e in out]


@pytest.mark.parametrize("at", [1, 5, 7, 8, 20, 27, 28, 30])
def test_a_rewritten_entry_with_recomputed_hashes_is_never_passed_once_anchored(at: int) -> None:
    entries, _, records = ledger()
    canonical = split_entry(entries[at - 1])[2].replace(b"Synthetic", b"Rewritten")
    edited, stored = rehashed(entries, at=at, canonical=canonical)
    # The last three entries are after the last signed head: the chain alone cannot tell (docs/audit.md).
    assert agree(edited, stored, records).ok == (at > 27)


@pytest.mark.parametrize("at", [3, 29])
def test_bytes_naming_another_sequence_are_never_passed(at: int) -> None:
    entries, _, records = ledger()
    edited, stored = rehashed(entries, at=at, sequence=at + 1)
    assert not agree(edited, stored, records).ok


def test_an_unanchored_entry_that_does_not_name_the_one_before_is_never_passed() -> None:
    entries, stored, records = ledger()
    _, sequence, body = split_entry(entries[28])
    entries[28] = entry_bytes("f" * 64, sequence, body)  # entry 29: after the last signed head
    stored[28] = hashlib.sha256(entries[28]).hexdigest()
    assert not agree(entries, stored, records).ok
    with pytest.raises(Disagrees):
        bulk(entries, stored, records)


def test_a_stored_hash_written_differently_is_never_passed() -> None:
    entries, stored, records = ledger()
    stored[9] = stored[9].upper()
    assert not slow(entries, stored, records).ok
    with pytest.raises(Disagrees):
        bulk(entries, stored, records)


def test_a_head_beyond_the_ledger_is_never_passed() -> None:
    entries, stored, records = ledger()
    assert not slow(entries[:20], stored[:20], records).ok
    with pytest.raises(Disagrees):
        bulk(entries[:20], stored[:20], records)


def test_chain_entries_from_stored_bytes_hash_to_the_bytes() -> None:
    entries, stored, _ = ledger(5)
    rows: list[ChainEntry] = [stored_entry(n, e, h) for n, (e, h) in enumerate(zip(entries, stored, strict=True), 1)]
    assert [r.hashed() for r in rows] == entries and rows[0].event["type"] == "case.action_recorded"
