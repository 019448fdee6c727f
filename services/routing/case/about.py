"""Who a case is about: whoever it must never be shown to, however they ask (inbox, break-glass, audit replay)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.routing.case.state import CaseState
from shared.contracts.envelope import Event
from shared.contracts.events import CaseTriaged


def people_about(events: Iterable[Event[Any]], state: CaseState) -> list[str]:
    """Triage's subjects and possible subjects, and people linked as subject or alleged perpetrator."""
    people: dict[str, None] = {}
    for event in events:
        if isinstance(event, CaseTriaged):
            people.update(dict.fromkeys(event.payload.subject_person_ids))
            people.update(dict.fromkeys(p.person_id for p in event.payload.possible_subjects))
    people.update(dict.fromkeys(p.person_id for p in state.people_it_is_about()))
    return list(people)
