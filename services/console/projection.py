"""The console's read model, kept from the event stream: concerns, each case's chronology, and a case summary row.

The summary is the routing service's own fold of the case's events (one implementation of the workflow), so
the console shows the case exactly as routing decides on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.projection_duties import (
    count_reminders,
    keep_deadlines,
    keep_debrief_actions,
    keep_policy_reviews,
    policy_row,
)
from services.console.store import case_entries, cases, concerns, policies
from services.routing.case import CaseState, fold
from services.routing.case.about import people_about
from services.routing.domain import ACKNOWLEDGE
from shared.contracts import parse_event
from shared.contracts.envelope import Event
from shared.contracts.events import CaseEscalated, CaseOpened, CaseTriaged, ConcernReceived, PolicyAdopted
from shared.subjects import CONSOLE_READ_MODEL
from shared.unit_of_work import Work

__all__ = ["CONSOLE_READ_MODEL", "on_events"]


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


def summary_row(
    events: list[Event[Any]], *, reporter_person_id: str | None, state: CaseState | None = None
) -> dict[str, Any]:
    """The cases row for a case's events, oldest first (`state`: their fold, when the caller has it)."""
    state = fold(events) if state is None else state
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


async def _reporters(session: AsyncSession, concern_event_ids: Iterable[str]) -> dict[str, str | None]:
    """Who reported each of these concerns (one statement)."""
    wanted = list(dict.fromkeys(concern_event_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(concerns.c.event_id, concerns.c.body["payload"]["reporter"]["person_id"].astext).where(
            concerns.c.event_id.in_(wanted)
        )
    )
    return {event_id: person_id for event_id, person_id in rows}


async def _histories(
    session: AsyncSession, case_ids: list[str], *, known: Mapping[uuid.UUID, Event[Any]]
) -> dict[str, list[Event[Any]]]:
    """Each case's own events in stream order (one statement); events of this batch are not parsed again."""
    rows = await session.execute(
        sa.select(case_entries.c.case_id, case_entries.c.event_id, sa.cast(case_entries.c.body, sa.Text))
        .where(case_entries.c.case_id.in_(case_ids), case_entries.c.event_type.like("case.%"))
        .order_by(case_entries.c.position)
    )
    histories: dict[str, list[Event[Any]]] = {case_id: [] for case_id in case_ids}
    for case_id, event_id, body in rows:
        event = known.get(event_id)
        histories[case_id].append(event if event is not None else parse_event(body))
    return histories


async def _refresh_cases(
    session: AsyncSession, case_ids: list[str], *, known: Mapping[uuid.UUID, Event[Any]]
) -> dict[str, CaseState]:
    """Refold each case once from its stored events and upsert its summary row (one statement for all)."""
    histories = {
        case_id: events for case_id, events in (await _histories(session, case_ids, known=known)).items() if events
    }
    if not histories:
        return {}
    states = {case_id: fold(events) for case_id, events in histories.items()}
    opened = {
        case_id: next((e for e in events if isinstance(e, CaseOpened)), None) for case_id, events in histories.items()
    }
    concern_of = {case_id: o.payload.concern_event_id if o is not None else None for case_id, o in opened.items()}
    reporters = await _reporters(session, (c for c in concern_of.values() if c is not None))
    rows = [
        summary_row(events, reporter_person_id=reporters.get(concern_of[case_id] or ""), state=states[case_id])
        for case_id, events in histories.items()
    ]
    statement = insert(cases)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[cases.c.case_id],
            set_={**{k: statement.excluded[k] for k in rows[0] if k != "case_id"}, "change": sa.text("default")},
        ),
        rows,
    )
    return states


def chronology_entry(event: Event[Any], case_id: str) -> dict[str, Any]:
    """The `case_entries` row of an event about a case."""
    return {
        "event_id": event.event_id,
        "case_id": case_id,
        "school_id": event.school_id,
        "event_type": event.type,
        "occurred_at": event.occurred_at,
        "body": event.model_dump(mode="json"),
    }


async def on_events(
    events: Sequence[Event[Any]], *, work: Work, stream_sequences: Mapping[uuid.UUID, int] | None = None
) -> None:
    """Keep the batch's concerns, add case events to their chronologies, refold each case it touched once."""
    # A handful of statements whatever the batch's size: one insert each for concerns and chronology entries,
    # one update for late reporters, one read of the touched cases' events and reporters, one upsert of rows.
    session = work.session
    adopted = [e for e in events if isinstance(e, PolicyAdopted)]
    if adopted:
        await session.execute(insert(policies).on_conflict_do_nothing(), [policy_row(e) for e in adopted])
    await keep_policy_reviews(session, events)
    await keep_deadlines(session, events)
    received = [e for e in events if isinstance(e, ConcernReceived)]
    if received:
        await session.execute(
            insert(concerns).on_conflict_do_nothing(),
            [
                {
                    "event_id": str(e.event_id),
                    "school_id": e.school_id,
                    "reference": e.payload.reference,
                    "body": e.model_dump(mode="json"),
                }
                for e in received
            ],
        )
        # A case projected before its concern arrived learns its reporter now.
        await session.execute(
            sa.update(cases)
            .where(cases.c.concern_event_id == sa.bindparam("concern"))
            .values(reporter_person_id=sa.bindparam("reporter"), change=sa.text("default")),
            [{"concern": str(e.event_id), "reporter": e.payload.reporter.person_id} for e in received],
        )
    entries: list[dict[str, Any]] = []
    touched: dict[str, None] = {}
    for event in events:
        case_id = getattr(event.payload, "case_id", None)
        if isinstance(event, ConcernReceived) or not isinstance(case_id, str):
            continue
        entries.append(chronology_entry(event, case_id))
        if event.AGGREGATE == "case":
            touched[case_id] = None
    if entries:
        await session.execute(insert(case_entries).on_conflict_do_nothing(), entries)
    if touched:
        states = await _refresh_cases(session, list(touched), known={e.event_id: e for e in events})
        await keep_debrief_actions(session, states)
    await count_reminders(session, events)
