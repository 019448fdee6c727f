"""Synthetic audit ledgers: chains of made-up events, and witness records signed over them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.checkpoint import SchoolTree
from services.audit.domain import GENESIS, ChainEntry, entry_hash
from services.audit.heads import WitnessRecord

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def synthetic_event(sequence: int, *, school_id: str) -> dict[str, object]:
    """An event document shaped like the ones audit stores (no real people)."""
    return {
        "event_id": str(uuid.UUID(int=sequence)),
        "type": "case.action_recorded",
        "version": 1,
        "school_id": school_id,
        "aggregate_id": f"case-{sequence // 10}",
        "occurred_at": (START + timedelta(seconds=sequence)).isoformat(),
        "actor": {"id": "staff-1", "role": "designated_safeguarding_lead"},
        "correlation_id": str(uuid.UUID(int=sequence // 10)),
        "payload": {"case_id": f"case-{sequence // 10}", "note": "Synthetic action " * 4, "step": sequence},
    }


def chain_of(events: Iterable[dict[str, object]], *, first: int = 1, previous: str = GENESIS) -> Iterator[ChainEntry]:
    """Entries chained over the events in order, as the ledger would hold them."""
    for sequence, event in enumerate(events, start=first):
        digest = entry_hash(previous_hash=previous, school_sequence=sequence, event=event)
        yield ChainEntry(sequence, event, previous, digest)
        previous = digest


def synthetic_chain(count: int, *, school_id: str = "st-marks") -> Iterator[ChainEntry]:
    return chain_of(synthetic_event(s, school_id=school_id) for s in range(1, count + 1))


def witness_over(
    entries: Iterable[ChainEntry], *, school_id: str, key: Ed25519PrivateKey, every: int
) -> list[WitnessRecord]:
    """Signed heads every `every` entries (and at the end), as checkpointing would have written them."""
    state, records = SchoolTree(school_id), []
    for entry in entries:
        state.extend(entry)
        if state.tree.size % every == 0:
            records.append(_signed(state, key=key))
    if state.added:
        records.append(_signed(state, key=key))
    return records


def _signed(state: SchoolTree, *, key: Ed25519PrivateKey) -> WitnessRecord:
    record = state.sign(key=key, timestamp=START + timedelta(minutes=state.tree.size))
    assert record is not None
    state.witnessed(record)
    return record
