"""Replay: cases (and routing's case index) rebuilt from the ledger as they stood at a moment.

The case is folded by the case aggregate's own `apply` (services/routing/case/state.py): there is one
implementation of what an event does to a case, and replay is a second reader of it, never a second writer.
The ledger is streamed from a server-side cursor, so memory grows with the number of cases, not of events.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import event_of
from services.audit.keyring import KeyRing
from services.audit.reading import CHUNK
from services.audit.store import ledger
from services.routing.case.state import CaseState, apply
from shared.contracts.envelope import parse_event, registry


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
            case_id = str(document["aggregate_id"])
            self.cases[case_id] = apply(self.cases.get(case_id) or CaseState(), parse_event(dict(document)))


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
    case. Sealed fields are opened; those whose key was shredded read as erased."""
    keys = await keyring.reader(session, school_id=school_id)
    query = sa.select(ledger.c.school_sequence, ledger.c.entry).where(ledger.c.school_id == school_id)
    if as_of is not None:
        query = query.where(ledger.c.occurred_at <= as_of)
    if types is not None:
        query = query.where(ledger.c.event_type.in_(sorted(types)))
    if case_id is not None:
        query = query.where(_about_case(school_id, case_id))
    result = await session.stream(query.order_by(ledger.c.school_sequence), execution_options={"yield_per": CHUNK})
    async for rows in result.partitions():  # one await a chunk, not a greenlet switch a row
        for sequence, entry in rows:
            yield sequence, keys.open(event_of(entry)).document


def _about_case(school_id: str, case_id: str) -> sa.ColumnElement[bool]:
    """The case's own events, those naming it, and those of the concern that opened it (same correlation)."""
    opened = (
        sa.select(ledger.c.correlation_id)
        .where(ledger.c.school_id == school_id, ledger.c.aggregate_id == case_id)
        .order_by(ledger.c.school_sequence)
        .limit(1)
        .scalar_subquery()
    )
    return sa.or_(
        ledger.c.aggregate_id == case_id,
        ledger.c.event["payload"]["case_id"].astext == case_id,
        ledger.c.correlation_id == opened,
    )


async def replay_cases(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, as_of: datetime | None = None
) -> dict[str, CaseState]:
    """Every case of the school as it stood at `as_of` (now, when None)."""
    folder = CaseFolder()
    documents = stream_documents(session, keyring=keyring, school_id=school_id, as_of=as_of, types=folder.wanted)
    async for _, document in documents:
        folder.add(document)
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
