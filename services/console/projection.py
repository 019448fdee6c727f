"""The console's read model, kept from the event stream: concerns, each case's chronology, and a case summary row.

The summary is the routing service's own fold of the case's events (one implementation of the workflow), so
the console shows the case exactly as routing decides on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.store import case_entries, cases, concerns, policies
from services.routing.case import fold
from services.routing.case.about import people_about
from services.routing.domain import ACKNOWLEDGE
from shared.contracts import parse_event
from shared.contracts.envelope import Event
from shared.contracts.events import CaseEscalated, CaseOpened, CaseTriaged, ConcernReceived, PolicyAdopted
from shared.subjects import CONSOLE_READ_MODEL
from shared.unit_of_work import Work

__all__ = ["CONSOLE_READ_MODEL", "on_event"]


def told(events: Iterable[Event[Any]]) -> list[str]:
    """Everyone routing told about the case, at triage or on escalation."""
    people: dict[str, None] = {}
    for event in events:
        if isinstance(event, CaseTriaged | CaseEscalated):
            people.update(dict.fromkeys(p.person_id for p in event.payload.recipients))
    return list(people)


def acknowledge_due(events: Iterable[Event[Any]]) -> datetime | None:
    """When triage said the case must be acknowledged by."""
    for event in events:
        if isinstance(event, CaseTriaged):
            return next((d.due_at for d in event.payload.deadlines if d.kind == ACKNOWLEDGE), None)
    return None


def summary_row(events: list[Event[Any]], *, reporter_person_id: str | None) -> dict[str, Any]:
    """The cases row for a case's events, oldest first."""
    state = fold(events)
    opened = next((e for e in events if isinstance(e, CaseOpened)), None)
    return {
        "case_id": state.case_id or events[0].aggregate_id,
        "school_id": events[0].school_id,
        "reference": state.reference or getattr(events[0].payload, "reference", ""),
        "concern_event_id": opened.payload.concern_event_id if opened else None,
        "kind": state.kind,
        "case_type": state.case_type,
        "urgency": state.urgency,
        "status": state.status,
        "acknowledged_by": state.acknowledged_by,
        "acknowledge_due": acknowledge_due(events),
        "outcome": state.outcome,
        "version": state.version,
        "subject_person_ids": people_about(events, state),
        "recipient_person_ids": told(events),
        "reporter_person_id": reporter_person_id,
        "opened_at": state.opened_at,
        "updated_at": events[-1].recorded_at,
    }


async def case_events(session: AsyncSession, case_id: str) -> list[Event[Any]]:
    """The case's own events (its aggregate's), in the order the stream gave them."""
    bodies = await session.execute(
        sa.select(case_entries.c.body)
        .where(case_entries.c.case_id == case_id, case_entries.c.event_type.like("case.%"))
        .order_by(case_entries.c.position)
    )
    return [parse_event(body) for body in bodies.scalars()]


async def _reporter(session: AsyncSession, concern_event_id: str | None) -> str | None:
    if concern_event_id is None:
        return None
    body = (
        await session.execute(sa.select(concerns.c.body).where(concerns.c.event_id == concern_event_id))
    ).scalar_one_or_none()
    return ((body or {}).get("payload", {}).get("reporter") or {}).get("person_id")


async def _refresh_case(session: AsyncSession, case_id: str) -> None:
    events = await case_events(session, case_id)
    if not events:
        return
    opened = next((e for e in events if isinstance(e, CaseOpened)), None)
    reporter = await _reporter(session, opened.payload.concern_event_id if opened else None)
    row = summary_row(events, reporter_person_id=reporter)
    statement = insert(cases).values(**row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[cases.c.case_id],
            set_={**{k: statement.excluded[k] for k in row if k != "case_id"}, "change": sa.text("default")},
        )
    )


async def on_event(event: Event[Any], *, work: Work) -> list[Event[Any]]:
    """Keep a concern or an adopted policy, add a case's event to its chronology and refresh its summary row."""
    session = work.session
    if isinstance(event, PolicyAdopted):
        await session.execute(
            insert(policies)
            .values(
                school_id=event.school_id,
                version=event.payload.version,
                digest=event.payload.digest,
                document=event.payload.document,
                adopted_at=event.occurred_at,
                adopted_by=event.actor.id,
            )
            .on_conflict_do_nothing()
        )
        return []
    if isinstance(event, ConcernReceived):
        await session.execute(
            insert(concerns)
            .values(
                event_id=str(event.event_id),
                school_id=event.school_id,
                reference=event.payload.reference,
                body=event.model_dump(mode="json"),
            )
            .on_conflict_do_nothing()
        )
        reporter = event.payload.reporter.person_id
        await session.execute(
            sa.update(cases)
            .where(cases.c.concern_event_id == str(event.event_id))
            .values(reporter_person_id=reporter, change=sa.text("default"))
        )
        return []
    case_id = getattr(event.payload, "case_id", None)
    if not isinstance(case_id, str):
        return []
    await session.execute(
        insert(case_entries)
        .values(
            event_id=event.event_id,
            case_id=case_id,
            school_id=event.school_id,
            event_type=event.type,
            occurred_at=event.occurred_at,
            body=event.model_dump(mode="json"),
        )
        .on_conflict_do_nothing()
    )
    if event.AGGREGATE == "case":
        await _refresh_case(session, case_id)
    return []
