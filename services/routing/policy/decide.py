"""The pure decision core: one concern and one policy in, one decision out. No I/O, no clock reads."""

from __future__ import annotations

from datetime import datetime

from services.routing.policy import floor
from services.routing.policy.calendar import due_at
from services.routing.policy.decision import Deadline, Decision, EscalationRung
from services.routing.policy.match import facts_of, matches
from services.routing.policy.model import Policy, Rule, SchoolRole, Urgency
from shared.contracts.concern import ConcernReceivedPayload

ACKNOWLEDGE = "acknowledge"

_IMMEDIATE_NOTE = (
    "A child may be at immediate risk: this is treated as immediate and goes to the DSL and the deputies. "
    "If a child is in immediate danger, call 999."
)
_UNMATCHED_NOTE = "No rule in the policy matched this concern: the DSL triages it."
_SUBJECT_NOTE = (
    "Someone this concern is about would normally be told of it: they are not, and the next person in line "
    "receives it instead."
)
_HEADTEACHER_NOTE = "This concern is about the headteacher: it goes to the named governor, not the headteacher."


def decide(concern: ConcernReceivedPayload, policy: Policy) -> Decision:
    """Apply the policy's rules and then the safety floor to one concern."""
    facts = facts_of(concern)
    matched: tuple[Rule, ...] = tuple(rule for rule in policy.rules_for_kind(concern.kind) if matches(rule.when, facts))
    actions = [rule.then for rule in matched]
    engaged: list[str] = []
    notes: list[str] = []

    subjects = floor.subject_person_ids(
        concern, policy=policy, reporter_is_subject=any(a.reporter_is_subject for a in actions)
    )
    category = next((a.category for a in actions if a.category), policy.fallback.category)
    urgency = max((a.urgency for a in actions if a.urgency), key=lambda u: u.rank, default=None)
    urgency = urgency or policy.fallback.urgency
    roles: set[SchoolRole] = {role for a in actions for role in a.notify}

    if concern.immediate_risk:
        urgency = Urgency.immediate
        roles |= {floor.DSL, floor.DEPUTY}
        engaged.append(floor.IMMEDIATE_RISK)
        notes.append(_IMMEDIATE_NOTE)
    if not matched:
        roles.add(floor.DSL)
        engaged.append(floor.UNMATCHED)
        notes.append(_UNMATCHED_NOTE)

    adult_subject = floor.adult_working_with_children_is_subject(concern, subjects=subjects, policy=policy)
    parents, parent_floor = floor.parent_notification(
        concern, actions=actions, adult_subject=adult_subject, matched=bool(matched)
    )
    engaged.extend(parent_floor)
    if floor.PARENTS_RISK in parent_floor or floor.PARENTS_HARM in parent_floor:
        roles.add(floor.DSL)

    if floor.headteacher_is_subject(subjects, policy=policy):
        roles.discard(floor.HEADTEACHER)
        roles.add(floor.NAMED_GOVERNOR)
        engaged.append(floor.HEADTEACHER_SUBJECT)
        notes.append(_HEADTEACHER_NOTE)

    recipients, notify_roles, passed_over = floor.resolve_recipients(roles, subjects=subjects, policy=policy)
    if not recipients:
        recipients, notify_roles, passed_over = floor.resolve_recipients({floor.DSL}, subjects=subjects, policy=policy)
        engaged.append(floor.NOBODY_ELSE)
    if not recipients:
        raise floor.NoEligibleRecipientError(
            f"concern {concern.reference}: everyone the policy names is a subject of it"
        )
    if passed_over:
        engaged.append(floor.NEVER_NOTIFY_SUBJECT)
        notes.append(_SUBJECT_NOTE)

    received_on = policy.calendar.local(concern.received_at).date()
    overdue = received_on > policy.source.next_review
    if overdue:
        notes.append(
            f"The school's policy was due for review by {policy.source.next_review.isoformat()}: "
            "it is overdue for review."
        )
    guidance = _unique(
        [a.guidance.strip() for a in actions] + ([] if matched else [policy.fallback.guidance.strip()]) + notes
    )
    # Built from parts already validated here and in the policy, so pydantic's checks are skipped (speed).
    return Decision.model_construct(
        reference=concern.reference,
        school_id=policy.school.id,
        category=category,
        urgency=urgency,
        notify_roles=notify_roles,
        recipients=recipients,
        parent_notification=parents,
        deadlines=_deadlines(concern.received_at, urgency=urgency, matched=matched, policy=policy),
        guidance=guidance,
        rule_ids=tuple(rule.id for rule in matched),
        safety_floor=tuple(engaged),
        subject_person_ids=tuple(sorted(subjects)),
        formal_record_required=any(a.formal_record for a in actions),
        policy_version=policy.version,
        policy_digest=policy.digest,
        policy_review_overdue=overdue,
    )


def acknowledge_by(since: datetime, *, urgency: Urgency, policy: Policy) -> datetime:
    """When a notification sent at `since` must be acknowledged, by the policy's time for `urgency`."""
    return due_at(since, within=policy.acknowledge_within[urgency], calendar=policy.calendar)


def _deadlines(
    received_at: datetime, *, urgency: Urgency, matched: tuple[Rule, ...], policy: Policy
) -> tuple[Deadline, ...]:
    within = policy.acknowledge_within[urgency]
    earliest: dict[str, Deadline] = {
        ACKNOWLEDGE: Deadline.model_construct(
            kind=ACKNOWLEDGE,
            due_at=due_at(received_at, within=within, calendar=policy.calendar),
            description=f"Acknowledge the concern within {within.described}.",
            rule_id=None,
        )
    }
    for rule in matched:
        for wanted in rule.then.deadlines:
            deadline = Deadline.model_construct(
                kind=wanted.kind,
                due_at=due_at(received_at, within=wanted.within, calendar=policy.calendar),
                description=wanted.description,
                rule_id=rule.id,
            )
            current = earliest.get(wanted.kind)
            if current is None or deadline.due_at < current.due_at:
                earliest[wanted.kind] = deadline
    return tuple(sorted(earliest.values(), key=lambda d: (d.due_at, d.kind)))


def _unique(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in texts if t))


def escalation_ladder(decision: Decision, *, policy: Policy) -> tuple[EscalationRung, ...]:
    """Who is told next, rung by rung, when nobody acknowledges: DSL, deputies, then the headteacher.

    People already told and people the concern is about are skipped; when the headteacher is a subject,
    the named governor takes the headteacher's rung.
    """
    subjects = frozenset(decision.subject_person_ids)
    told = {r.person_id for r in decision.recipients}
    last = floor.NAMED_GOVERNOR if floor.headteacher_is_subject(subjects, policy=policy) else floor.HEADTEACHER
    rungs: list[EscalationRung] = []
    for role in (floor.DSL, floor.DEPUTY, last):
        people = [p for p in policy.holders(role) if p.id not in subjects and p.id not in told]
        if not people:
            continue
        told.update(p.id for p in people)
        rungs.append(
            EscalationRung(
                rung=len(rungs) + 1,
                role=role,
                recipients=tuple(floor.recipient(p, role=role, policy=policy) for p in people),
            )
        )
    return tuple(rungs)
