"""Checkpoints: every so often, sign a new tree head over each school's ledger that has grown.

`Checkpointer.checkpoint_once(session)` reads only the entries added since the last head (the tree's complete
subtree roots stay in memory between runs; after a restart they are rebuilt once from the ledger and checked
against the last head in the witness log). It never signs over a ledger that fails its own checks: a school
whose chain is broken is reported, logged as an alert and left unsigned until someone looks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import (
    GENESIS,
    ChainEntry,
    canonical_entry_digest,
    canonical_json,
    event_id_in,
    stored_entry,
)
from services.audit.heads import SignedHead, TreeHead, WitnessedEntry, WitnessLog, WitnessRecord, sign_head
from services.audit.merkle import MerkleTree, entry_leaf
from services.audit.reading import chunk_query, schools_with_entries
from services.audit.store import ledger, transaction_driver
from shared.contracts.envelope import Actor
from shared.contracts.events import LedgerCheckpointed, LedgerCheckpointedPayload
from shared.messaging import jetstream
from shared.subjects import Subjects

log = logging.getLogger(__name__)
AUDIT_ACTOR = Actor(id="audit", role="service")
_CHECKPOINT_NAMESPACE = uuid.UUID("6f1d3c1e-2a7b-4c55-9a51-3d0c2b7e9f10")
# Entries read at a time while the tree grows: a minute of appends is read in small chunks, not held at once.
CHUNK = 1_000


class LedgerBroken(Exception):
    """The ledger fails its own checks, so no head may be signed over it."""


@dataclass
class SchoolTree:
    """One school's tree as checkpointing grows it: pure, so tests and benchmarks sign heads the same way."""

    school_id: str
    tree: MerkleTree = field(default_factory=MerkleTree)
    tip: str = GENESIS
    last: SignedHead | None = None
    added: list[WitnessedEntry] = field(default_factory=list)

    def extend(self, entry: ChainEntry) -> None:
        """Check the next entry against the chain so far and add it; LedgerBroken when it does not hold."""
        sequence = self.tree.size + 1
        canonical = canonical_json(entry.event) if entry.canonical is None else entry.canonical
        recomputed = canonical_entry_digest(self.tip, sequence, canonical).hex()
        if entry.school_sequence != sequence or recomputed != entry.entry_hash:
            raise LedgerBroken(f"entry {sequence} does not hold: the chain is broken there")
        self._add(sequence, recomputed, entry, canonical)

    def extend_stored(self, school_sequence: int, entry: bytes, stored_hash: str) -> None:
        """`extend` for a ledger row as read (its sequence, entry bytes and entry hash), without a ChainEntry.

        When the bytes begin with the chain's tip and the expected sequence, they are exactly the bytes `extend`
        would hash (that prefix, then the event's canonical bytes after it): they are hashed as they are, not
        split and joined again. Any other row takes `extend`'s path, which decides it the same way as ever.
        """
        sequence = self.tree.size + 1
        prefix = b"%s\n%d\n" % (self.tip.encode(), sequence)
        if school_sequence != sequence or not entry.startswith(prefix):
            self.extend(stored_entry(school_sequence, entry, stored_hash, decode=False))
            return
        recomputed = sha256(entry).hexdigest()
        if recomputed != stored_hash:
            raise LedgerBroken(f"entry {sequence} does not hold: the chain is broken there")
        self._add(sequence, recomputed, None, entry[len(prefix) :])

    def _add(self, sequence: int, recomputed: str, entry: ChainEntry | None, canonical: bytes) -> None:
        """Add an entry whose hash was checked to the tree; its event id is read only when it is witnessed."""
        self.tree.append(entry_leaf(recomputed))
        self.tip = recomputed
        # After a restart the tree is rebuilt from the start; what the last head covered is not witnessed again.
        witnessed = self.last.head.tree_size if self.last else 0
        if sequence > witnessed:
            decoded = entry is not None and entry.canonical is None
            event_id = entry.event.get("event_id") if decoded else event_id_in(canonical)  # type: ignore[union-attr]
            self.added.append(WitnessedEntry(sequence, str(event_id), recomputed))
        elif sequence == witnessed and self.last and self.tree.root().hex() != self.last.head.root_hash:
            raise LedgerBroken(f"entries up to {sequence} no longer rebuild the last signed head")

    def sign(self, *, key: Ed25519PrivateKey, timestamp: datetime) -> WitnessRecord | None:
        """A signed head over the tree as it stands, with the entries added since the last; None if none were."""
        if not self.added:
            return None
        head = TreeHead(
            school_id=self.school_id,
            tree_size=self.tree.size,
            root_hash=self.tree.root().hex(),
            timestamp=timestamp.isoformat(),
            previous=self.last.ref if self.last else None,
        )
        return WitnessRecord(signed=sign_head(head, key=key), entries=tuple(self.added))

    def witnessed(self, record: WitnessRecord) -> None:
        """The record reached the witness log: the next head follows it."""
        self.last, self.added = record.signed, []


class Checkpointer:
    """Keeps each school's tree up to date and signs a head whenever it has grown."""

    def __init__(self, *, key: Ed25519PrivateKey, witness: WitnessLog, clock: Callable[[], datetime]) -> None:
        self._key = key
        self._witness = witness
        self._clock = clock
        self._schools: dict[str, SchoolTree] | None = None
        self.broken: dict[str, str] = {}  # school -> why it is not being checkpointed (a standing alert)

    async def checkpoint_once(self, session: AsyncSession) -> list[LedgerCheckpointed]:
        """Sign a head for every school whose ledger grew; returns the events to publish."""
        if self._schools is None:
            self._schools = {
                school: SchoolTree(school, last=head) for school, head in self._witness.latest_heads().items()
            }
        events = []
        for school_id, last_sequence in sorted((await schools_with_entries(session)).items()):
            state = self._schools.setdefault(school_id, SchoolTree(school_id))
            if school_id in self.broken or last_sequence == state.tree.size:
                continue
            try:
                record = await self._grow(session, state=state, through=last_sequence)
            except LedgerBroken as problem:
                self.broken[school_id] = str(problem)
                log.error("audit ledger of school %s fails its checks; not signing: %s", school_id, problem)
                continue
            if record is None:
                continue
            self._witness.append(record)
            state.witnessed(record)
            events.append(checkpoint_event(record.signed))
        return events

    async def _grow(self, session: AsyncSession, *, state: SchoolTree, through: int) -> WitnessRecord | None:
        # CHUNK rows at a time, straight from the driver (no SQLAlchemy rows or ChainEntry per entry: this runs
        # once for every entry appended)
        driver = await transaction_driver(session)
        query = chunk_query(ledger.fullname)
        for first in range(state.tree.size + 1, through + 1, CHUNK):
            rows = await driver.fetch(query, state.school_id, first, min(first + CHUNK - 1, through))
            for sequence, entry, stored in rows:
                state.extend_stored(sequence, entry, stored)  # a gap: the next row's sequence is refused there
        if state.tree.size != through:
            raise LedgerBroken(f"the ledger ends at {state.tree.size}, not {through}")
        if state.last and through < state.last.head.tree_size:
            raise LedgerBroken(f"the ledger ends at {through}; the last signed head covers {state.last.head.tree_size}")
        return state.sign(key=self._key, timestamp=self._clock())


def checkpoint_event(signed: SignedHead) -> LedgerCheckpointed:
    """The event announcing a signed head; its id is fixed by the head, so a re-publish is deduplicated."""
    head = signed.head
    payload = LedgerCheckpointedPayload(
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        timestamp=head.timestamp,
        previous=head.previous,
        key_id=signed.key_id,
        signature=signed.signature,
    )
    event: LedgerCheckpointed = LedgerCheckpointed.new(
        payload,
        school_id=head.school_id,
        aggregate_id=f"ledger-{head.school_id}",
        actor=AUDIT_ACTOR,
        occurred_at=datetime.fromisoformat(head.timestamp),
        event_id=uuid.uuid5(_CHECKPOINT_NAMESPACE, signed.ref),
    )
    return event


async def publish_checkpoint(broker: NatsBroker, event: LedgerCheckpointed, *, subjects: Subjects) -> bool:
    """Put a checkpoint on the audit stream (not the domain stream); False when it was a duplicate."""
    ack = await jetstream(broker).publish(
        subjects.checkpoint(school_id=event.school_id),
        event.to_json(),
        headers={"Nats-Msg-Id": str(event.event_id), "content-type": "application/json"},
        stream=subjects.checkpoint_stream,
        timeout=10.0,
    )
    return not ack.duplicate


def declare_checkpoint_publisher(broker: NatsBroker, *, subjects: Subjects) -> Any:
    """Declare the checkpoint publisher on audit's broker so the AsyncAPI catalogue lists it."""
    return broker.publisher(
        subjects.checkpoint(school_id="*"),
        title=f"{LedgerCheckpointed.TYPE} v{LedgerCheckpointed.VERSION}",
        description=(LedgerCheckpointed.__doc__ or "").strip(),
        schema=LedgerCheckpointed,
    )
