"""Queries the pages make, each inside a school-scoped transaction (row-level security applies)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.access import CaseFacts
from services.console.projection import case_events
from services.console.store import accounts, case_entries, cases, concerns
from services.routing.case import CaseState, fold
from shared.contracts import parse_event
from shared.contracts.envelope import Event

URGENCY_ORDER = {"immediate": 0, "high": 1, "medium": 2, "low": 3}


def facts(row: Any) -> CaseFacts:
    return CaseFacts(
        school_id=row.school_id,
        case_type=row.case_type,
        subject_person_ids=tuple(row.subject_person_ids or ()),
        recipient_person_ids=tuple(row.recipient_person_ids or ()),
    )


def inbox_order(row: Any) -> tuple[int, int, float]:
    """Not yet acknowledged first, then the most urgent, then the newest."""
    opened = row.opened_at.timestamp() if row.opened_at else 0.0
    return (
        0 if row.status == "open" else 1 if row.status != "closed" else 2,
        URGENCY_ORDER.get(row.urgency, 4),
        -opened,
    )


async def case_rows(session: AsyncSession, *, since_change: int = 0) -> list[Any]:
    """Every case the transaction's schools hold (changed after `since_change`)."""
    result = await session.execute(sa.select(cases).where(cases.c.change > since_change))
    return list(result.all())


async def latest_change(session: AsyncSession) -> int:
    return int(await session.scalar(sa.select(sa.func.coalesce(sa.func.max(cases.c.change), 0))) or 0)


async def case_row(session: AsyncSession, case_id: str) -> Any | None:
    return (await session.execute(sa.select(cases).where(cases.c.case_id == case_id))).one_or_none()


@dataclass(frozen=True)
class CaseFile:
    """Everything the case page shows."""

    row: Any
    state: CaseState
    concern: dict[str, Any] | None
    triage: Any | None
    chronology: list[Event[Any]]


async def case_file(session: AsyncSession, row: Any) -> CaseFile:
    own = await case_events(session, row.case_id)
    every = await session.execute(
        sa.select(case_entries.c.body).where(case_entries.c.case_id == row.case_id).order_by(case_entries.c.position)
    )
    chronology = [parse_event(body) for body in every.scalars()]
    concern = None
    if row.concern_event_id:
        body = await session.scalar(sa.select(concerns.c.body).where(concerns.c.event_id == row.concern_event_id))
        concern = (body or {}).get("payload")
    triage = next((e.payload for e in own if e.type == "case.triaged"), None)
    return CaseFile(row=row, state=fold(own), concern=concern, triage=triage, chronology=chronology)


async def account_rows(session: AsyncSession) -> list[Any]:
    result = await session.execute(
        sa.select(accounts.c.username, accounts.c.school_id, accounts.c.person_id, accounts.c.role).order_by(
            accounts.c.school_id, accounts.c.username
        )
    )
    return list(result.all())
