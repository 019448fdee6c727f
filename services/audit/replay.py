"""Replay: cases (and routing's case index) rebuilt from the ledger as they stood at a moment.

The case is folded by the case aggregate's own `apply` (services/routing/case/state.py): there is one
implementation of what an event does to a case, and replay is a second reader of it, never a second writer.
The ledger is streamed from a server-side cursor, so memory grows with the number of cases, not of events.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import event_of
from services.audit.keyring import KeyRing
from services.audit.ledger_events import stream_events
from services.audit.reading import CHUNK
from services.audit.store import ledger
from services.routing.case.state import CaseState, apply
from shared.contracts.envelope import Event, parse_event, registry


def case_event_types() -> frozenset[str]:
    """Every event type the case aggregate is made of (its class's AGGREGATE is `case`)."""
    return frozenset(cls.TYPE for cls in registry().classes().values() if cls.AGGREGATE == "case")


class CaseFolder:
    """Folds ledger documents, in chain order, into each case's state; events of other aggregates are ignored."""

    def __init__(self) -> None:
        self.wanted = case_event_types()
        self.cases: dict[str, CaseState] = {}

    def add(self, document: Mapping[str, Any]) -> None:
        if document["type"] in self.wanted:
            self.add_event(parse_event(dict(document)))

    def add_event(self, event: Event[Any]) -> None:
        """Fold one event of the case aggregate (already parsed) into its case."""
        cases, case_id = self.cases, event.aggregate_id
        cases[case_id] = apply(cases.get(case_id) or CaseState(), event)


def fold_cases(documents: Iterable[Mapping[str, Any]]) -> dict[str, CaseState]:
    """Each case's state after the given events (ledger documents in chain order)."""
    folder = CaseFolder()
    for document in documents:
        folder.add(document)
    return folder.cases


def state_json(state: CaseState) -> dict[str, Any]:
    """A case state as plain JSON values."""
    return _plain(dataclasses.asdict(state))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def chronology_line(school_sequence: int, document: Mapping[str, Any]) -> dict[str, Any]:
    """One step of a case's chronology: what happened, when, and who did it."""
    actor = document.get("actor") or {}
    return {
        "school_sequence": school_sequence,
        "occurred_at": document["occurred_at"],
        "type": document["type"],
        "actor": actor.get("id"),
        "role": actor.get("role"),
        "event_id": str(document["event_id"]),
        "payload": document.get("payload"),
    }


CASE_INDEX_COLUMNS = ("case_id", "school_id", "reference", "version", "status", "policy_version", "opened_at")


def case_index_row(state: CaseState) -> dict[str, Any]:
    """The row routing keeps for this case in `routing.cases`, as the events say it should be."""
    return {
        "case_id": state.case_id,
        "school_id": state.school_id,
        "reference": state.reference,
        "version": state.version,
        "status": state.status,
        "policy_version": state.policy_version,
        "opened_at": state.opened_at,
    }


async def stream_documents(
    session: AsyncSession,
    *,
    keyring: KeyRing,
    school_id: str,
    as_of: datetime | None = None,
    types: Iterable[str] | None = None,
    case_id: str | None = None,
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """(sequence, opened event document) in chain order: those that occurred by `as_of`, of these types, about this
    case. Sealed fields are opened; those whose key was shredded read as erased.

    Every document is decoded from its entry bytes, and its time and type are those the bytes say. Only a case's
    selection uses other columns: its aggregate and correlation (indexed), and the bytes for a payload naming it.
    """
    keys = await keyring.reader(session, school_id=school_id)
    wanted = frozenset(types) if types is not None else None
    indexed = _indexed_for(school_id, case_id) if case_id is not None else sa.true()
    query = sa.select(ledger.c.school_sequence, ledger.c.entry, indexed.label("indexed")).where(
        ledger.c.school_id == school_id
    )
    if case_id is not None:
        query = query.where(sa.or_(indexed, _bytes_name(case_id)))
    result = await session.stream(query.order_by(ledger.c.school_sequence), execution_options={"yield_per": CHUNK})
    async for rows in result.partitions():  # one await a chunk, not a greenlet switch a row
        for sequence, entry, by_index in rows:
            document = event_of(entry)
            if wanted is not None and document.get("type") not in wanted:
                continue
            if as_of is not None and datetime.fromisoformat(str(document["occurred_at"])) > as_of:
                continue
            if not by_index and (document.get("payload") or {}).get("case_id") != case_id:
                continue  # the bytes name the case somewhere, but not as the payload's case
            yield sequence, keys.open(document).document


def _indexed_for(school_id: str, case_id: str) -> sa.ColumnElement[bool]:
    """The case's own events, and those of the concern that opened it (same correlation)."""
    opened = (
        sa.select(ledger.c.correlation_id)
        .where(ledger.c.school_id == school_id, ledger.c.aggregate_id == case_id)
        .order_by(ledger.c.school_sequence)
        .limit(1)
        .scalar_subquery()
    )
    return sa.or_(ledger.c.aggregate_id == case_id, ledger.c.correlation_id == opened)


def _bytes_name(case_id: str) -> sa.ColumnElement[bool]:
    """Entry bytes holding `"case_id":"<case_id>"` (how canonical JSON writes a payload naming the case)."""
    needle = b'"case_id":' + json.dumps(case_id, ensure_ascii=False).encode()
    return sa.func.position(sa.literal(needle, type_=sa.LargeBinary).op("in")(ledger.c.entry)) > 0


async def replay_cases(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, as_of: datetime | None = None
) -> dict[str, CaseState]:
    """Every case of the school as it stood at `as_of` (now, when None)."""
    folder = CaseFolder()
    chunks = stream_events(session, keyring=keyring, school_id=school_id, wanted=folder.wanted, as_of=as_of)
    async for events in chunks:
        for _, event in events:
            folder.add_event(event)
    return folder.cases


async def replay_case(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, case_id: str, as_of: datetime | None = None
) -> dict[str, Any] | None:
    """One case as it stood at `as_of`, with its full chronology (every event about it, in order); None if unknown."""
    folder = CaseFolder()
    chronology = []
    documents = stream_documents(session, keyring=keyring, school_id=school_id, as_of=as_of, case_id=case_id)
    async for sequence, document in documents:
        chronology.append(chronology_line(sequence, document))
        if document["aggregate_id"] == case_id:
            folder.add(document)
    state = folder.cases.get(case_id)
    if state is None:
        return None
    return {"case": state_json(state), "chronology": chronology}


async def rebuild_case_index(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, as_of: datetime | None = None
) -> list[dict[str, Any]]:
    """Routing's case index (`routing.cases`) for the school, rebuilt from scratch out of the ledger."""
    cases = await replay_cases(session, keyring=keyring, school_id=school_id, as_of=as_of)
    return sorted((case_index_row(state) for state in cases.values()), key=lambda row: row["case_id"])
