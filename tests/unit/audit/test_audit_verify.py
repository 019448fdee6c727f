"""Verify names the first bad entry and what was done to it, for each way an insider could rewrite the ledger.

Each scenario rewrites a 20-entry ledger checkpointed every 4 entries, the way someone with the database's
superuser could (and, where it says "recomputed", with every hash after the change recomputed so the chain
itself looks whole). The signed heads and the witness log were made before the rewrite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.domain import ChainEntry
from services.audit.heads import WitnessRecord, sign_head
from services.audit.verify import verify_entries
from tests.support.ledgers import chain_of, synthetic_chain, synthetic_event, witness_over

SCHOOL = "st-marks"
KEY = Ed25519PrivateKey.generate()
ORIGINAL = list(synthetic_chain(20, school_id=SCHOOL))
WITNESS = witness_over(ORIGINAL, school_id=SCHOOL, key=KEY, every=4)


def _events(chain: list[ChainEntry]) -> list[dict[str, object]]:
    return [dict(entry.event) for entry in chain]


def _recomputed(events: list[dict[str, object]]) -> list[ChainEntry]:
    return list(chain_of(events))


def _edited(events: list[dict[str, object]], index: int) -> list[dict[str, object]]:
    changed = dict(events[index])
    changed["payload"] = {"note": "rewritten"}
    return [*events[:index], changed, *events[index + 1 :]]


def edit_in_place(chain: list[ChainEntry]) -> list[ChainEntry]:
    entry = chain[6]
    return [*chain[:6], dataclasses.replace(entry, event={**entry.event, "payload": {}}), *chain[7:]]


def edit_and_recompute(chain: list[ChainEntry]) -> list[ChainEntry]:
    return _recomputed(_edited(_events(chain), 6))


def delete_leaving_a_gap(chain: list[ChainEntry]) -> list[ChainEntry]:
    return [*chain[:6], *chain[7:]]


def delete_and_recompute(chain: list[ChainEntry]) -> list[ChainEntry]:
    events = _events(chain)
    return _recomputed([*events[:6], *events[7:]])


def swap_and_recompute(chain: list[ChainEntry]) -> list[ChainEntry]:
    events = _events(chain)
    return _recomputed([*events[:6], events[7], events[6], *events[8:]])


def insert_and_recompute(chain: list[ChainEntry]) -> list[ChainEntry]:
    events = _events(chain)
    return _recomputed([*events[:6], synthetic_event(999, school_id=SCHOOL), *events[6:]])


def truncate_the_tail(chain: list[ChainEntry]) -> list[ChainEntry]:
    return chain[:13]


SCENARIOS: list[tuple[str, Callable[[list[ChainEntry]], list[ChainEntry]], str, int]] = [
    ("an entry edited in place", edit_in_place, "edited", 7),
    ("an entry edited, hashes recomputed", edit_and_recompute, "edited", 7),
    ("an entry deleted", delete_leaving_a_gap, "missing", 7),
    ("an entry deleted, the rest renumbered and recomputed", delete_and_recompute, "missing", 7),
    ("two entries swapped, recomputed", swap_and_recompute, "reordered", 7),
    ("an entry inserted, recomputed", insert_and_recompute, "inserted", 7),
    ("the tail cut off", truncate_the_tail, "truncated", 14),
]


def test_an_untouched_ledger_verifies() -> None:
    report = verify_entries(ORIGINAL, school_id=SCHOOL, witness=WITNESS, public_key=KEY.public_key())
    assert report.ok, report.problem
    assert (report.entries, report.heads, report.anchored) == (20, 5, 20)


@pytest.mark.parametrize(("attack", "kind", "sequence"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_verify_names_the_first_bad_entry(
    attack: Callable[[list[ChainEntry]], list[ChainEntry]], kind: str, sequence: int
) -> None:
    report = verify_entries(attack(ORIGINAL), school_id=SCHOOL, witness=WITNESS, public_key=KEY.public_key())
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == (kind, sequence), str(report.problem)


def test_with_heads_alone_a_recomputed_rewrite_is_placed_between_two_heads() -> None:
    heads_only = [WitnessRecord(signed=r.signed, entries=()) for r in WITNESS]
    # Without the witnessed entries the tree is rebuilt from the ledger alone, so the heads must match it.
    report = verify_entries(
        edit_and_recompute(ORIGINAL), school_id=SCHOOL, witness=heads_only, public_key=KEY.public_key()
    )
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == ("rewritten", 5), str(report.problem)


def test_a_head_signed_with_another_key_is_forged() -> None:
    impostor = Ed25519PrivateKey.generate()
    forged = [*WITNESS[:2], WitnessRecord(signed=sign_head(WITNESS[2].signed.head, key=impostor), entries=())]
    report = verify_entries(ORIGINAL, school_id=SCHOOL, witness=forged, public_key=KEY.public_key())
    assert report.problem is not None and report.problem.kind == "forged head", report.problem
    assert "12 entries" in report.problem.detail


def test_a_head_dropped_from_the_witness_log_breaks_the_chain_of_heads() -> None:
    report = verify_entries(ORIGINAL, school_id=SCHOOL, witness=[WITNESS[0], *WITNESS[2:]], public_key=KEY.public_key())
    assert report.problem is not None and report.problem.kind == "forged head", report.problem


def test_entries_after_the_last_head_verify_by_the_chain_but_are_not_yet_anchored() -> None:
    more = list(synthetic_chain(23, school_id=SCHOOL))
    report = verify_entries(more, school_id=SCHOOL, witness=WITNESS, public_key=KEY.public_key())
    assert report.ok, report.problem
    assert (report.entries, report.anchored) == (23, 20)


def test_a_signed_head_whose_root_its_own_witnessed_entries_do_not_rebuild_is_forged() -> None:
    last = WITNESS[-1]
    wrong = dataclasses.replace(last.signed.head, root_hash="00" * 32)
    lying = [*WITNESS[:-1], WitnessRecord(signed=sign_head(wrong, key=KEY), entries=last.entries)]
    report = verify_entries(ORIGINAL, school_id=SCHOOL, witness=lying, public_key=KEY.public_key())
    assert report.problem is not None and report.problem.kind == "forged head", report.problem
    assert "disagrees with its own witness log" in report.problem.detail


def test_the_fast_path_over_canonical_bytes_agrees_with_the_one_over_documents() -> None:
    from services.audit.domain import canonical_json
    from services.audit.verify import LedgerVerifier

    for chain, expected in [(ORIGINAL, None), (edit_and_recompute(ORIGINAL), ("edited", 7))]:
        verifier = LedgerVerifier(school_id=SCHOOL, witness=WITNESS, public_key=KEY.public_key())
        for entry in chain:
            canonical = canonical_json(entry.event)
            if not verifier.add_canonical(
                entry.school_sequence, canonical, previous_hash=entry.previous_hash, stored=entry.entry_hash
            ):
                break
        problem = verifier.finish().problem
        assert ((problem.kind, problem.school_sequence) if problem else None) == expected
