"""The console's read model, kept from the event stream: concerns, each case's chronology, and a case summary row.

The summary is the routing service's own fold of the case's events (one implementation of the workflow), so
the console shows the case exactly as routing decides on it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.projection_duties import count_reminders, keep_deadlines, keep_policy_reviews, policy_row
from services.console.projection_statements import KEEP, REFRESH, run
from services.console.store import case_entries, policies
from services.routing.case import CaseState, fold
from services.routing.case.about import people_about
from services.routing.domain import ACKNOWLEDGE
from shared.contracts import parse_event
from shared.contracts.envelope import Event, json_text
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


def _stored_then_new(
    stored: Iterable[Any], batch: Iterable[tuple[str, Event[Any]]], case_ids: Iterable[str]
) -> dict[str, list[Event[Any]]]:
    """Each case's own events in stream order: those stored before the batch (case id, event id, body), then the
    batch's case events not among them, in batch order. An event of the batch is used as parsed, never reparsed."""
    histories: dict[str, list[Event[Any]]] = {case_id: [] for case_id in case_ids}
    in_batch = {str(event.event_id): event for _, event in batch}
    seen: set[str] = set()
    for case_id, event_id, body in stored:
        event = in_batch.get(event_id)
        histories[case_id].append(event if event is not None else parse_event(body))
        seen.add(event_id)
    for case_id, event in batch:
        if (event_id := str(event.event_id)) not in seen:
            histories[case_id].append(event)
            seen.add(event_id)
    return {case_id: events for case_id, events in histories.items() if events}


def _summary_rows(histories: Mapping[str, list[Event[Any]]], states: Mapping[str, CaseState]) -> str:
    """The cases rows (reporter apart: the statement reads it) as one JSON array, for `REFRESH`."""
    rows = []
    for case_id, events in histories.items():
        row = summary_row(events, reporter_person_id=None, state=states[case_id])
        del row["reporter_person_id"]
        rows.append(row)
    return json.dumps(rows, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def _refresh_cases(session: AsyncSession, histories: Mapping[str, list[Event[Any]]]) -> None:
    """Refold each case once and write its summary row and open debrief actions (one statement for all)."""
    states = {case_id: fold(events) for case_id, events in histories.items()}
    actions = [(case_id, state, a) for case_id, state in states.items() for a in state.open_debrief_actions]
    await run(
        session,
        REFRESH,
        _summary_rows(histories, states),
        [case_id for case_id, _, _ in actions],
        [a.action_id for _, _, a in actions],
        [state.school_id for _, state, _ in actions],
        [a.owner for _, _, a in actions],
        [a.due_on for _, _, a in actions],
    )


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


def _keep_arguments(
    received: Sequence[ConcernReceived],
    entries: Sequence[tuple[str, Event[Any]]],
    touched: list[str],
    *,
    as_delivered: Mapping[uuid.UUID, bytes],
) -> tuple[list[Any], ...]:
    """`KEEP`'s arrays: the concerns, the chronology entries (bodies as the wire writes them: as delivered, when they
    were), the touched cases."""
    return (
        [str(e.event_id) for e in received],
        [e.school_id for e in received],
        [e.payload.reference for e in received],
        [json_text(e, as_delivered.get(e.event_id)) for e in received],
        [e.payload.reporter.person_id for e in received],
        [e.event_id for _, e in entries],
        [case_id for case_id, _ in entries],
        [e.school_id for _, e in entries],
        [e.type for _, e in entries],
        [e.occurred_at for _, e in entries],
        [json_text(e, as_delivered.get(e.event_id)) for _, e in entries],
        touched,
    )


async def on_events(
    events: Sequence[Event[Any]], *, work: Work, stream_sequences: Mapping[uuid.UUID, int] | None = None
) -> None:
    """Keep the batch's concerns, add case events to their chronologies, refold each case it touched once."""
    # Two statements whatever the batch's size (see projection_statements), and the rarer duties' own. Each leaves
    # the read model as one delivery of the batch would, so the consumer edge runs them without a transaction
    # block and claims nothing in its inbox (`idempotent`): a batch that fails part way, or comes again, is redone.
    session = work.session
    adopted = [e for e in events if isinstance(e, PolicyAdopted)]
    if adopted:
        await session.execute(insert(policies).on_conflict_do_nothing(), [policy_row(e) for e in adopted])
    await keep_policy_reviews(session, events)
    await keep_deadlines(session, events)
    received: list[ConcernReceived] = []
    entries: list[tuple[str, Event[Any]]] = []
    for event in events:
        if isinstance(event, ConcernReceived):
            received.append(event)
        elif isinstance(case_id := getattr(event.payload, "case_id", None), str):
            entries.append((case_id, event))
    if received or entries:
        own = [(case_id, event) for case_id, event in entries if event.AGGREGATE == "case"]
        touched = list(dict.fromkeys(case_id for case_id, _ in own))
        stored = await run(session, KEEP, *_keep_arguments(received, entries, touched, as_delivered=work.received))
        if touched:
            await _refresh_cases(session, _stored_then_new(stored, own, touched))
    await count_reminders(session, events)
