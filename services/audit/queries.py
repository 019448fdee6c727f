"""What a reader of the record asks audit: a school's cases as they stood, one case's chronology, a verification.

Reads only, over the ledger through replay (services/audit/replay.py) and verification (checks.py). A case about
the reader (a subject or possible subject at triage, or linked as subject or alleged perpetrator) is left out of
everything they are given: the list, the chronology and the export.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.checks import verify_school
from services.audit.heads import WitnessLog
from services.audit.keyring import KeyRing
from services.audit.ledger_events import stream_events
from services.audit.replay import CaseFolder, chronology_line, state_json, stream_documents
from services.audit.verify import Report
from services.routing.case.about import people_about
from services.routing.case.state import CaseState
from shared.contracts.envelope import Event
from shared.contracts.events import CaseTriaged

# A reply must fit in one NATS message (1 MB by default): a case list is paged, a long chronology loses payloads.
PAGE = 200
MAX_REPLY_BYTES = 900_000
SUMMARY = ("case_id", "reference", "status", "case_type", "kind", "category", "urgency", "version", "policy_version")


class _Folder(CaseFolder):
    """Each case's state, and its triage event, which names its subjects and possible subjects."""

    def __init__(self) -> None:
        super().__init__()
        self.triage: dict[str, Event[Any]] = {}

    def add_event(self, event: Event[Any]) -> None:
        super().add_event(event)
        if isinstance(event, CaseTriaged):
            self.triage[event.aggregate_id] = event

    def about(self, case_id: str) -> list[str]:
        triage = self.triage.get(case_id)
        return people_about([triage] if triage else [], self.cases[case_id])


async def _folded(session: AsyncSession, *, keyring: KeyRing, school_id: str, as_of: datetime | None) -> _Folder:
    folder = _Folder()
    chunks = stream_events(session, keyring=keyring, school_id=school_id, wanted=folder.wanted, as_of=as_of)
    async for events in chunks:
        for _, event in events:
            folder.add_event(event)
    return folder


def case_summary(state: CaseState) -> dict[str, Any]:
    """One row of the cases table: where the case stood, without its content."""
    row = {name: getattr(state, name) for name in SUMMARY}
    row["opened_at"] = state.opened_at.isoformat() if state.opened_at else None
    row["acknowledged_by"] = state.acknowledged_by
    row["outcome"] = state.outcome
    return row


async def replay_school(
    session: AsyncSession,
    *,
    keyring: KeyRing,
    school_id: str,
    as_of: datetime,
    viewer: str,
    offset: int = 0,
    limit: int = PAGE,
) -> dict[str, Any]:
    """A page of the school's cases as they stood at `as_of`, oldest first; cases about `viewer` left out."""
    folder = await _folded(session, keyring=keyring, school_id=school_id, as_of=as_of)
    shown = [state for case_id, state in folder.cases.items() if viewer not in folder.about(case_id)]
    shown.sort(key=lambda s: (s.opened_at.isoformat() if s.opened_at else "", s.case_id))
    limit = max(1, min(limit, PAGE))
    page = shown[max(0, offset) : max(0, offset) + limit]
    return {"cases": [case_summary(state) for state in page], "total": len(shown), "offset": max(0, offset)}


async def case_chronology(
    session: AsyncSession, *, keyring: KeyRing, school_id: str, case_id: str, as_of: datetime, viewer: str
) -> dict[str, Any] | None:
    """One case as it stood at `as_of` with every event about it in order; None if unknown or about `viewer`."""
    folder = _Folder()
    chronology = []
    async for sequence, document in stream_documents(
        session, keyring=keyring, school_id=school_id, as_of=as_of, case_id=case_id
    ):
        chronology.append(chronology_line(sequence, document))
        if document["aggregate_id"] == case_id:
            folder.add(document)
    if case_id not in folder.cases or viewer in folder.about(case_id):
        return None
    state = folder.cases[case_id]
    answer = {"case": {**state_json(state), **case_summary(state)}, "chronology": chronology, "shortened": False}
    if len(json.dumps(answer, default=str)) > MAX_REPLY_BYTES:  # who and when stay; what each event said goes
        answer["chronology"] = [{**line, "payload": None} for line in chronology]
        answer["shortened"] = True
    return answer


async def cases_about(session: AsyncSession, *, keyring: KeyRing, school_id: str, viewer: str) -> frozenset[str]:
    """The ids (case and correlation) of every case about `viewer`: an export leaves their entries out."""
    folder = await _folded(session, keyring=keyring, school_id=school_id, as_of=None)
    left_out: set[str] = set()
    for case_id, state in folder.cases.items():
        if viewer in folder.about(case_id):
            left_out.add(case_id)
            if state.correlation_id is not None:
                left_out.add(str(state.correlation_id))
    return frozenset(left_out)


def report_json(report: Report) -> dict[str, Any]:
    """A verification as the console shows it: ok, or the first entry found wrong and what is wrong with it."""
    problem = report.problem
    return {
        "verified": report.ok,
        "entries": report.entries,
        "heads": report.heads,
        "anchored": report.anchored,
        "problem": None
        if problem is None
        else {"kind": problem.kind, "school_sequence": problem.school_sequence, "detail": problem.detail},
    }


async def verify_record(
    session: AsyncSession, *, school_id: str, witness: WitnessLog, public_key: Ed25519PublicKey
) -> dict[str, Any]:
    """The school's whole ledger checked against its signed heads."""
    return report_json(await verify_school(session, school_id=school_id, witness=witness, public_key=public_key))
