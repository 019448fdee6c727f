"""A synthetic audit ledger for the audit bench: real case events, chained and checkpointed, made quickly.

Each case is ten events (opened, acknowledged, eight actions recorded), built once from the real event classes
and then stamped with fresh ids by byte formatting, so a million entries take seconds and every one parses as
its class and folds through the case aggregate's `apply`. The chain hashes, the Merkle tree and a signed head
every `HEAD_EVERY` entries are made as audit makes them; the rows go to PostgreSQL by COPY.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.domain import GENESIS, canonical_json, entry_bytes
from services.audit.heads import TreeHead, WitnessedEntry, WitnessRecord, sign_head
from services.audit.merkle import MerkleTree, leaf_hash
from shared.contracts.case_events import (
    CaseAcknowledged,
    CaseAcknowledgedPayload,
    CaseActionRecorded,
    CaseActionRecordedPayload,
)
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import CaseOpened, CaseOpenedPayload

SCHOOL = "bench-school"
EVENTS_PER_CASE = 10
HEAD_EVERY = 1_000
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_EVENT_ID = "11111111-1111-4111-8111-111111111111"
_CORRELATION = "22222222-2222-4222-8222-222222222222"
_CASE = "case-SENTINEL"
_REFERENCE = "SG-SENTINEL"
_AT = "2000-01-01T00:00:00Z"
COLUMNS = (
    "school_id",
    "school_sequence",
    "event_id",
    "event_type",
    "aggregate_id",
    "correlation_id",
    "occurred_at",
    "previous_hash",
    "entry_hash",
    "entry",
)
Row = tuple[Any, ...]


def _template(event: Event[Any]) -> tuple[str, bytes]:
    """The event's canonical bytes with its ids and time as %(name)s slots."""
    document = event.model_dump(mode="json")
    document.update(correlation_id=_CORRELATION, occurred_at=_AT, recorded_at=_AT, causation_id=None)
    text = canonical_json(document).decode().replace("%", "%%")
    for sentinel, slot in ((_EVENT_ID, "e"), (_CORRELATION, "k"), (_CASE, "c"), (_REFERENCE, "r"), (_AT, "t")):
        text = text.replace(sentinel, f"%({slot})s")
    return event.type, text.encode()


def case_templates() -> list[tuple[str, bytes]]:
    """One case's ten events, as (type, canonical template)."""
    dsl = Actor(id="staff-1", role="designated_safeguarding_lead")
    common: dict[str, Any] = {
        "school_id": SCHOOL,
        "aggregate_id": _CASE,
        "occurred_at": START,
        "event_id": uuid.UUID(_EVENT_ID),
    }
    opened = CaseOpened.new(
        CaseOpenedPayload(
            case_id=_CASE, reference=_REFERENCE, concern_event_id=_CORRELATION, kind="online_bullying", policy_version=1
        ),
        actor=Actor(id="routing", role="service"),
        **common,
    )
    acknowledged = CaseAcknowledged.new(
        CaseAcknowledgedPayload(case_id=_CASE, acknowledged_by="staff-1", role=dsl.role), actor=dsl, **common
    )
    action = CaseActionRecorded.new(
        CaseActionRecordedPayload(
            case_id=_CASE,
            action="pastoral_support",
            details="Synthetic: the designated safeguarding lead spoke with the class teacher and arranged support.",
        ),
        actor=dsl,
        **common,
    )
    return [_template(opened), _template(acknowledged)] + [_template(action)] * (EVENTS_PER_CASE - 2)


@dataclass
class SyntheticLedger:
    """Makes the ledger chunk by chunk (rows for COPY) and its witness records, with a signing key of its own."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    templates: list[tuple[str, bytes]] = field(default_factory=case_templates)
    size: int = 0
    tip: str = GENESIS
    tree: MerkleTree = field(default_factory=MerkleTree)
    previous_head: str | None = None
    witnessed: list[WitnessedEntry] = field(default_factory=list)
    records: list[WitnessRecord] = field(default_factory=list)

    def chunk(self, count: int) -> tuple[list[Row], list[bytes]]:
        """The next `count` rows, and their entry bytes (what the raw baselines hash and publish)."""
        rows: list[Row] = []
        entries: list[bytes] = []
        for _ in range(count):
            n = self.size + 1
            case_number, step = divmod(n - 1, EVENTS_PER_CASE)
            event_type, template = self.templates[step]
            event_id = f"00000000-0000-4000-9000-{n:012d}"
            correlation = f"00000000-0000-4000-8000-{case_number:012d}"
            at = START + timedelta(seconds=n)
            case_id = f"case-{case_number:08d}"
            canonical = template % {
                b"e": event_id.encode(),
                b"k": correlation.encode(),
                b"c": case_id.encode(),
                b"r": b"SG-%08d" % case_number,
                b"t": at.isoformat().replace("+00:00", "Z").encode(),
            }
            entry = entry_bytes(self.tip, n, canonical)
            digest = hashlib.sha256(entry).digest()
            entry_hash = digest.hex()
            rows.append(
                (
                    SCHOOL,
                    n,
                    uuid.UUID(event_id),
                    event_type,
                    case_id,
                    uuid.UUID(correlation),
                    at,
                    self.tip,
                    entry_hash,
                    entry,
                )
            )
            entries.append(entry)
            self.tip, self.size = entry_hash, n
            self.tree.append(leaf_hash(digest))
            self.witnessed.append(WitnessedEntry(n, event_id, entry_hash))
            if n % HEAD_EVERY == 0:
                self._sign()
        return rows, entries

    def finish(self) -> None:
        """Sign a head over the last entries too."""
        if self.witnessed:
            self._sign()

    def _sign(self) -> None:
        head = TreeHead(SCHOOL, self.tree.size, self.tree.root().hex(), START.isoformat(), self.previous_head)
        signed = sign_head(head, key=self.key)
        self.records.append(WitnessRecord(signed=signed, entries=tuple(self.witnessed)))
        self.previous_head, self.witnessed = signed.ref, []

    def witness_lines(self) -> Iterator[str]:
        for record in self.records:
            yield record.to_line()
