"""The case as its events tell it: a frozen CaseState and `apply`, one event at a time (no I/O, no clock)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import reduce
from operator import attrgetter
from typing import Any, Literal

from services.routing.policy import floor
from shared.contracts.case_events import (
    CaseAcknowledged,
    CaseActionRecorded,
    CaseClosed,
    CaseDebriefActionCompleted,
    CaseDebriefRecorded,
    CaseDebriefRequested,
    CaseDecisionRecorded,
    CaseInvestigationCompleted,
    CaseOutcomeRecorded,
    CaseParentNotificationDecided,
    CaseParentsInformed,
    CasePersonLinked,
    CaseReassigned,
    CaseReclassified,
    CaseReopened,
    CaseType,
    ParentsBefore,
)
from shared.contracts.envelope import Event
from shared.contracts.events import CaseOpened, CaseTriaged

CaseStatus = Literal["unopened", "open", "in_progress", "closed"]
Changes = dict[str, Any]  # what one event changes in a case: field name to new value
ABOUT = ("subject", "alleged_perpetrator")


@dataclass(frozen=True, slots=True)
class LinkedPerson:
    """A person in the case with their own involvement in it."""

    person_id: str
    role: str
    involvement: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A decision on the case: its kind and, for referrals, the agency."""

    kind: str
    agency: str | None


@dataclass(frozen=True, slots=True)
class OpenDebriefAction:
    """A debrief action not yet marked done: who owns it and when it is due."""

    action_id: str
    owner: str
    due_on: date


@dataclass(frozen=True, slots=True)
class InformedParent:
    """A parent or carer the school's message was sent to: on which channel, at which address, when."""

    parent_id: str
    relationship: str
    channel: str
    address: str
    informed_at: datetime


@dataclass(frozen=True, slots=True)
class CaseState:
    """Everything the workflow rules look at, folded from the case's events."""

    case_id: str = ""
    school_id: str = ""
    reference: str = ""
    version: int = 0
    status: CaseStatus = "unopened"
    case_type: CaseType = "concern"
    reclassified: bool = False
    kind: str = ""
    category: str = ""
    urgency: str = ""
    policy_version: int = 0
    opened_at: datetime | None = None
    correlation_id: uuid.UUID | None = None
    traceparent: str | None = None
    acknowledged_by: str | None = None
    assigned_to: str | None = None
    people: tuple[LinkedPerson, ...] = ()
    parents: ParentsBefore = "not_applicable"
    parents_reason: str = ""
    parents_at_triage: str = ""  # triage's own answer: inform, dsl_decides, must_not_tell or not_applicable
    parents_floor: tuple[str, ...] = ()  # the safety floor's parent protections triage engaged
    adults_about: tuple[str, ...] = ()  # the school's people triage found the concern is (or may be) about
    parents_informed: tuple[InformedParent, ...] = ()
    actions: tuple[str, ...] = ()
    decisions: tuple[RecordedDecision, ...] = ()
    outcome: str | None = None
    investigation_completed: bool = False
    debrief_requested: bool = False
    debriefed: bool = False
    open_debrief_actions: tuple[OpenDebriefAction, ...] = ()
    times_reopened: int = 0

    @property
    def opened(self) -> bool:
        """Whether a case.opened has been folded."""
        return self.status != "unopened"

    @property
    def closed(self) -> bool:
        return self.status == "closed"

    def person(self, person_id: str) -> LinkedPerson | None:
        """The linked person with this id, if any."""
        return next((p for p in self.people if p.person_id == person_id), None)

    def people_it_is_about(self) -> tuple[LinkedPerson, ...]:
        """Subjects and alleged perpetrators: never told, never acting on the case."""
        return tuple(p for p in self.people if p.involvement in ABOUT)

    def debrief_action(self, action_id: str) -> OpenDebriefAction | None:
        """The open debrief action with this id, if any."""
        return next((a for a in self.open_debrief_actions if a.action_id == action_id), None)

    def has_decision(self, *kinds: str) -> bool:
        """Whether a decision of one of these kinds is recorded."""
        return any(d.kind in kinds for d in self.decisions)


def case_type_of(*words: str) -> CaseType:
    """The case type a triage category (or, failing that, the concern's kind) names."""
    for word in words:
        if "declaration" in word or "pre_existing_relationship" in word:
            return "staff_declaration"
        if "low_level" in word:
            return "low_level_concern"
        if "allegation" in word:
            return "staff_allegation"
    return "concern"


def _opened(state: CaseState, event: CaseOpened) -> Changes:
    body = event.payload
    return dict(
        case_id=body.case_id,
        school_id=event.school_id,
        reference=body.reference,
        status="open",
        kind=body.kind,
        case_type=case_type_of(body.kind),
        policy_version=body.policy_version,
        opened_at=event.occurred_at,
        correlation_id=event.correlation_id,
        traceparent=event.traceparent,
    )


PARENT_PROTECTIONS = frozenset(
    {floor.PARENTS_RISK, floor.PARENTS_HARM, floor.PARENTS_ADULT, floor.PARENTS_PARENT_SUBJECT}
)
# Triage's four answers in the case's own words: until the DSL decides, parents are not contacted either way.
_AT_TRIAGE = {"must_not_tell": "withhold", "dsl_decides": "withhold"}


def _triaged(state: CaseState, event: CaseTriaged) -> Changes:
    body = event.payload
    case_type = state.case_type if state.reclassified else case_type_of(body.category, state.kind)
    return dict(
        category=body.category,
        urgency=body.urgency,
        policy_version=body.policy_version,
        parents=_AT_TRIAGE.get(body.parents, body.parents),  # type: ignore[arg-type]
        parents_reason=body.parents_reason,
        parents_at_triage=body.parents,
        parents_floor=tuple(p for p in body.safety_floor if p in PARENT_PROTECTIONS),
        adults_about=(*body.subject_person_ids, *(p.person_id for p in body.possible_subjects)),
        case_type=case_type,
    )


def _acknowledged(state: CaseState, event: CaseAcknowledged) -> Changes:
    who = event.payload.acknowledged_by
    status: CaseStatus = "in_progress" if state.status == "open" else state.status
    return dict(acknowledged_by=who, assigned_to=state.assigned_to or who, status=status)


def _reassigned(state: CaseState, event: CaseReassigned) -> Changes:
    return dict(assigned_to=event.payload.to_person_id)


def _action_recorded(state: CaseState, event: CaseActionRecorded) -> Changes:
    return dict(actions=(*state.actions, event.payload.action))


def _parents_decided(state: CaseState, event: CaseParentNotificationDecided) -> Changes:
    return dict(parents=event.payload.decision, parents_reason=event.payload.reason)


def _parents_informed(state: CaseState, event: CaseParentsInformed) -> Changes:
    body = event.payload
    told = InformedParent(
        parent_id=body.parent_id,
        relationship=body.relationship,
        channel=body.channel,
        address=body.address,
        informed_at=event.occurred_at,
    )
    return dict(parents_informed=(*state.parents_informed, told))


def _person_linked(state: CaseState, event: CasePersonLinked) -> Changes:
    body = event.payload
    if state.person(body.person_id) is not None:
        # A person keeps the involvement they were first linked with; linking never rewrites it.
        return {}
    person = LinkedPerson(person_id=body.person_id, role=body.role, involvement=body.involvement, name=body.name)
    return dict(people=(*state.people, person))


def _decision_recorded(state: CaseState, event: CaseDecisionRecorded) -> Changes:
    decision = RecordedDecision(kind=event.payload.kind, agency=event.payload.agency)
    return dict(decisions=(*state.decisions, decision))


def _reclassified(state: CaseState, event: CaseReclassified) -> Changes:
    return dict(case_type=event.payload.to_type, reclassified=True)


def _outcome_recorded(state: CaseState, event: CaseOutcomeRecorded) -> Changes:
    return dict(outcome=event.payload.outcome)


def _investigation_completed(state: CaseState, event: CaseInvestigationCompleted) -> Changes:
    return dict(investigation_completed=True)


def _debrief_requested(state: CaseState, event: CaseDebriefRequested) -> Changes:
    return dict(debrief_requested=True)


def _debrief_recorded(state: CaseState, event: CaseDebriefRecorded) -> Changes:
    added = tuple(
        OpenDebriefAction(action_id=a.action_id, owner=a.owner, due_on=a.due_on)
        for a in event.payload.actions
        if state.debrief_action(a.action_id) is None
    )
    return dict(debriefed=True, open_debrief_actions=(*state.open_debrief_actions, *added))


def _debrief_action_completed(state: CaseState, event: CaseDebriefActionCompleted) -> Changes:
    remaining = tuple(a for a in state.open_debrief_actions if a.action_id != event.payload.action_id)
    return dict(open_debrief_actions=remaining)


def _closed(state: CaseState, event: CaseClosed) -> Changes:
    return dict(status="closed")


def _reopened(state: CaseState, event: CaseReopened) -> Changes:
    status: CaseStatus = "in_progress" if state.acknowledged_by else "open"
    return dict(status=status, outcome=None, times_reopened=state.times_reopened + 1)


_FOLDS: dict[type[Event[Any]], Callable[[CaseState, Any], Changes]] = {
    CaseOpened: _opened,
    CaseTriaged: _triaged,
    CaseAcknowledged: _acknowledged,
    CaseReassigned: _reassigned,
    CaseActionRecorded: _action_recorded,
    CaseParentNotificationDecided: _parents_decided,
    CaseParentsInformed: _parents_informed,
    CasePersonLinked: _person_linked,
    CaseDecisionRecorded: _decision_recorded,
    CaseReclassified: _reclassified,
    CaseOutcomeRecorded: _outcome_recorded,
    CaseInvestigationCompleted: _investigation_completed,
    CaseDebriefRequested: _debrief_requested,
    CaseDebriefRecorded: _debrief_recorded,
    CaseDebriefActionCompleted: _debrief_action_completed,
    CaseClosed: _closed,
    CaseReopened: _reopened,
}


def apply(state: CaseState, event: Event[Any]) -> CaseState:
    """The state after one more event; events the workflow does not track (e.g. escalations) only count."""
    fold = _FOLDS.get(type(event))
    changes = fold(state, event) if fold is not None else {}
    changes["version"] = state.version + 1
    return _evolve(state, changes)


_FIELDS = tuple(f.name for f in fields(CaseState))
_POSITION = {name: index for index, name in enumerate(_FIELDS)}
_VALUES = attrgetter(*_FIELDS)


def _evolve(state: CaseState, changes: Changes) -> CaseState:
    """`dataclasses.replace(state, **changes)`, cheaper: every field read in one C call, one constructor call."""
    values = list(_VALUES(state))
    for name, value in changes.items():
        values[_POSITION[name]] = value  # a KeyError for a field CaseState does not have, as replace's TypeError
    return CaseState(*values)


def fold(events: Iterable[Event[Any]], *, state: CaseState | None = None) -> CaseState:
    """The state after all `events`, from an empty case (or from `state`)."""
    return reduce(apply, events, state or CaseState())
