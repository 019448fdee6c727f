"""The case workflow's rules: whether a command fits the case as it stands, and the events it records.

Pure: no I/O, no clock reads. The time and the asking person come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.routing.case.commands import (
    Acknowledge,
    CaseCommand,
    Close,
    CompleteDebriefAction,
    CompleteInvestigation,
    DecideParentNotification,
    InformParents,
    LinkPerson,
    Reassign,
    Reclassify,
    RecordAction,
    RecordDebrief,
    RecordDecision,
    RecordOutcome,
    Reopen,
    RequestDebrief,
)
from services.routing.case.parents import inform_parents
from services.routing.case.refusals import CommandRejected, StaleCommand, must_be
from services.routing.case.roles import DECLARATION_DECIDERS, SAFEGUARDING_LEADS, case_managers, spoken
from services.routing.case.state import ABOUT, CaseState
from shared.contracts import case_events as ev
from shared.contracts.concern import ADULTS_WORKING_WITH_CHILDREN
from shared.contracts.envelope import Actor, Event
from shared.contracts.parent_message import ParentMessage

ALLEGATION_OUTCOMES = ("substantiated", "false", "malicious", "unsubstantiated", "unfounded")

Recorded = list[tuple[type[Event[Any]], BaseModel]]


def _acknowledge(state: CaseState, command: Acknowledge, actor: Actor) -> Recorded:
    if state.acknowledged_by is not None:
        return []
    return [
        (
            ev.CaseAcknowledged,
            ev.CaseAcknowledgedPayload(case_id=state.case_id, acknowledged_by=actor.id, role=actor.role),
        )
    ]


def _reassign(state: CaseState, command: Reassign, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="reassign a case")
    person = state.person(command.to.person_id)
    if person is not None and person.involvement in ABOUT:
        raise CommandRejected(f"{person.person_id} is named in the case as {person.involvement} and cannot lead it")
    if command.to.person_id == state.assigned_to:
        return []
    payload = ev.CaseReassignedPayload(
        case_id=state.case_id,
        from_person_id=state.assigned_to,
        to_person_id=command.to.person_id,
        to_role=command.to.role,
        reason=command.reason,
    )
    return [(ev.CaseReassigned, payload)]


def _record_action(state: CaseState, command: RecordAction, actor: Actor) -> Recorded:
    if command.action == "parents_contacted" and state.parents == "withhold":
        raise CommandRejected("parents are not to be told on this case: the DSL must override that decision first")
    if command.action == "lado_referral" and state.case_type != "staff_allegation":
        raise CommandRejected(
            f"a LADO referral is for an allegation about staff; this case is a {state.case_type}"
            " (reclassify it first if the harm threshold is met)"
        )
    if command.action == "sanction" and state.case_type != "concern":
        raise CommandRejected("a sanction is for a learner; a staff matter is handled under the staff code of conduct")
    if command.person_id is not None and state.person(command.person_id) is None:
        raise CommandRejected(f"{command.person_id} is not linked to the case: link them first")
    payload = ev.CaseActionRecordedPayload(
        case_id=state.case_id, action=command.action, details=command.details, person_id=command.person_id
    )
    return [(ev.CaseActionRecorded, payload)]


def _decide_parents(state: CaseState, command: DecideParentNotification, actor: Actor) -> Recorded:
    must_be(actor, SAFEGUARDING_LEADS, to="decide whether parents are told")
    if command.decision == state.parents and command.reason == state.parents_reason:
        return []
    payload = ev.CaseParentNotificationDecidedPayload(
        case_id=state.case_id,
        decision=command.decision,
        previous=state.parents,
        overridden=command.decision != state.parents,
        reason=command.reason,
    )
    return [(ev.CaseParentNotificationDecided, payload)]


def _link_person(state: CaseState, command: LinkPerson, actor: Actor) -> Recorded:
    person = command.person
    existing = state.person(person.person_id)
    if existing is not None:
        if (existing.involvement, existing.role) == (person.involvement, person.role.value):
            return []
        raise CommandRejected(
            f"{person.person_id} is already linked as {existing.role} {existing.involvement}; "
            "linking never changes a person's part in the case"
        )
    recorded: Recorded = [
        (
            ev.CasePersonLinked,
            ev.CasePersonLinkedPayload(
                case_id=state.case_id,
                person_id=person.person_id,
                role=person.role.value,
                involvement=person.involvement,
                name=person.name,
                age=person.age,
                year_group=person.year_group,
            ),
        )
    ]
    about_an_adult = person.involvement in ABOUT and person.role in ADULTS_WORKING_WITH_CHILDREN
    if about_an_adult and state.case_type == "concern" and not state.reclassified:
        reason = f"an adult working with children ({person.role.value}) is linked as {person.involvement}"
        recorded.append(
            (
                ev.CaseReclassified,
                ev.CaseReclassifiedPayload(
                    case_id=state.case_id, from_type=state.case_type, to_type="staff_allegation", reason=reason
                ),
            )
        )
    return recorded


def _record_decision(state: CaseState, command: RecordDecision, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="record a decision")
    if command.kind == "staff_declaration":
        if state.case_type != "staff_declaration":
            raise CommandRejected(f"this case is a {state.case_type}, not a staff declaration")
        must_be(actor, DECLARATION_DECIDERS, to="record the decision on a staff declaration")
        if not command.advice:
            raise CommandRejected("record the advice given to the member of staff as well as the decision")
    if command.kind == "refer" and command.agency is None:
        raise CommandRejected("a decision to refer names the agency referred to")
    if command.kind == "refer" and command.agency == "lado" and state.case_type != "staff_allegation":
        raise CommandRejected(f"a LADO referral is for an allegation about staff; this case is a {state.case_type}")
    payload = ev.CaseDecisionRecordedPayload(
        case_id=state.case_id,
        kind=command.kind,
        decision=command.decision,
        reasons=command.reasons,
        advice=command.advice,
        agency=command.agency,
        decided_by_role=actor.role,
    )
    return [(ev.CaseDecisionRecorded, payload)]


def _reclassify(state: CaseState, command: Reclassify, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="reclassify a case")
    if command.case_type == state.case_type:
        raise CommandRejected(f"the case is already a {state.case_type}")
    payload = ev.CaseReclassifiedPayload(
        case_id=state.case_id, from_type=state.case_type, to_type=command.case_type, reason=command.reason
    )
    return [(ev.CaseReclassified, payload)]


def _allegation_outcome_check(state: CaseState, outcome: str | None) -> None:
    if state.case_type == "staff_allegation" and outcome not in ALLEGATION_OUTCOMES:
        raise CommandRejected(
            f"an allegation about staff ends {', '.join(ALLEGATION_OUTCOMES[:-1])} or "
            f"{ALLEGATION_OUTCOMES[-1]}; {outcome!r} is none of these"
        )


def _record_outcome(state: CaseState, command: RecordOutcome, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="record an outcome")
    _allegation_outcome_check(state, command.outcome)
    payload = ev.CaseOutcomeRecordedPayload(
        case_id=state.case_id,
        case_type=state.case_type,
        outcome=command.outcome,
        summary=command.summary,
        previous_outcome=state.outcome,
    )
    return [(ev.CaseOutcomeRecorded, payload)]


def _complete_investigation(state: CaseState, command: CompleteInvestigation, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="complete an investigation")
    if state.investigation_completed:
        raise CommandRejected("the investigation is already recorded as complete")
    payload = ev.CaseInvestigationCompletedPayload(case_id=state.case_id, summary=command.summary)
    return [(ev.CaseInvestigationCompleted, payload)]


def _request_debrief(state: CaseState, command: RequestDebrief, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="request a debrief")
    if not state.investigation_completed:
        raise CommandRejected("a debrief follows a completed investigation: complete the investigation first")
    if state.debrief_requested:
        raise CommandRejected("a debrief is already requested for this case")
    payload = ev.CaseDebriefRequestedPayload(
        case_id=state.case_id, requested_of=list(command.requested_of), focus=command.focus
    )
    return [(ev.CaseDebriefRequested, payload)]


def _record_debrief(state: CaseState, command: RecordDebrief, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="record a debrief")
    if not state.investigation_completed:
        raise CommandRejected("a debrief follows a completed investigation: complete the investigation first")
    taken = {a.action_id for a in state.open_debrief_actions} & {a.action_id for a in command.actions}
    if taken:
        raise CommandRejected(f"debrief action {sorted(taken)[0]} is already open on this case")
    payload = ev.CaseDebriefRecordedPayload(
        case_id=state.case_id,
        lessons_learnt=command.lessons_learnt,
        # A change to the policy is tied to the version whose decision on this case prompted it.
        policy_changes=[ev.PolicyChange(change=c, policy_version=state.policy_version) for c in command.policy_changes],
        curriculum_changes=list(command.curriculum_changes),
        actions=[ev.DebriefAction(**a.model_dump()) for a in command.actions],
    )
    return [(ev.CaseDebriefRecorded, payload)]


def _complete_debrief_action(state: CaseState, command: CompleteDebriefAction, actor: Actor) -> Recorded:
    action = state.debrief_action(command.action_id)
    if action is None:
        raise CommandRejected(f"no open debrief action {command.action_id} on this case")
    managers = case_managers(state)
    if actor.id != action.owner and actor.role not in managers:
        raise CommandRejected(f"only the action's owner or {spoken(managers)} may mark it done; you are {actor.role}")
    payload = ev.CaseDebriefActionCompletedPayload(
        case_id=state.case_id, action_id=command.action_id, note=command.note
    )
    return [(ev.CaseDebriefActionCompleted, payload)]


def _close(state: CaseState, command: Close, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="close a case")
    declaration = state.case_type == "staff_declaration"
    if declaration and not state.has_decision("staff_declaration"):
        raise CommandRejected(
            "a staff declaration closes only once the decision made and the advice given are formally recorded"
        )
    if not declaration and state.outcome is None:
        raise CommandRejected("record an outcome before closing the case")
    _allegation_outcome_check(state, state.outcome)
    if state.case_type in ("concern", "staff_allegation") and not state.has_decision("refer", "not_refer"):
        raise CommandRejected(
            "record the decision whether to refer, with its reasons (a decision not to refer too), before closing"
        )
    payload = ev.CaseClosedPayload(
        case_id=state.case_id, case_type=state.case_type, outcome=state.outcome, summary=command.summary
    )
    return [(ev.CaseClosed, payload)]


def _reopen(state: CaseState, command: Reopen, actor: Actor) -> Recorded:
    must_be(actor, case_managers(state), to="reopen a case")
    if not state.closed:
        raise CommandRejected("only a closed case can be reopened")
    payload = ev.CaseReopenedPayload(case_id=state.case_id, reason=command.reason, previous_outcome=state.outcome)
    return [(ev.CaseReopened, payload)]


_RULES: dict[type[BaseModel], Callable[[CaseState, Any, Actor], Recorded]] = {
    Acknowledge: _acknowledge,
    Reassign: _reassign,
    RecordAction: _record_action,
    DecideParentNotification: _decide_parents,
    LinkPerson: _link_person,
    RecordDecision: _record_decision,
    Reclassify: _reclassify,
    RecordOutcome: _record_outcome,
    CompleteInvestigation: _complete_investigation,
    RequestDebrief: _request_debrief,
    RecordDebrief: _record_debrief,
    CompleteDebriefAction: _complete_debrief_action,
    Close: _close,
    Reopen: _reopen,
}
_ALLOWED_WHEN_CLOSED = (Reopen, RequestDebrief, RecordDebrief, CompleteDebriefAction)


def _check_case(state: CaseState, command: CaseCommand, actor: Actor) -> None:
    if not state.opened or (state.case_id, state.school_id) != (command.case_id, command.school_id):
        raise CommandRejected(f"no case {command.case_id} at {command.school_id}")
    if command.expected_version is not None and command.expected_version != state.version:
        raise StaleCommand(
            f"the case has moved on: you saw version {command.expected_version}, it is now at "
            f"version {state.version}; reload it and try again"
        )
    if actor.role == "anonymous":
        raise CommandRejected("an anonymous reporter cannot act on a case")
    named = state.person(actor.id)
    if named is not None and named.involvement in ABOUT:
        raise CommandRejected(f"you are named in this case as {named.involvement} and cannot act on it")
    if state.closed and not isinstance(command, _ALLOWED_WHEN_CLOSED):
        raise CommandRejected("the case is closed: reopen it first")


def _event(cls: type[Event[Any]], payload: BaseModel, *, state: CaseState, actor: Actor, now: datetime) -> Event[Any]:
    return cls(
        type=cls.TYPE,
        version=cls.VERSION,
        school_id=state.school_id,
        aggregate_id=state.case_id,
        occurred_at=now,
        recorded_at=now,
        actor=actor,
        correlation_id=state.correlation_id,
        traceparent=state.traceparent,
        payload=payload,
    )


def decide(
    state: CaseState,
    command: CaseCommand,
    *,
    now: datetime,
    actor: Actor,
    parent_message: ParentMessage | None = None,
) -> list[Event[Any]]:
    """The events `command` records on the case (none when it changes nothing); CommandRejected when not allowed.

    `parent_message` is the school's words to parents under the case's policy version, for inform_parents.
    """
    _check_case(state, command, actor)
    if isinstance(command, InformParents):
        recorded = inform_parents(state, command, actor, words=parent_message)
    else:
        recorded = _RULES[type(command)](state, command, actor)
    return [_event(cls, payload, state=state, actor=actor, now=now) for cls, payload in recorded]
