"""The pure decision core: one concern and one policy in, one decision out. No I/O, no clock reads."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from services.routing.policy import floor, urgency_floor
from services.routing.policy.calendar import due_at
from services.routing.policy.decision import (
    Deadline,
    Decision,
    EscalationRung,
    ParentNotification,
    PossibleSubjectRef,
)
from services.routing.policy.match import facts_of, matching_rules
from services.routing.policy.model import Policy, Rule, SchoolRole, Urgency
from services.routing.policy.subjects import find_subjects
from shared.contracts.concern import ConcernReceivedPayload, RiskAnswer

ACKNOWLEDGE = "acknowledge"

_IMMEDIATE_NOTE = (
    "A child may be at immediate risk: this is treated as immediate and goes to the DSL and the deputies. "
    "If a child is in immediate danger, call 999."
)
_KIND_NOTE = "This kind of concern is urgent by its nature: it is treated as at least {urgency}."
_UNMATCHED_NOTE = "No rule in the policy says what kind of concern this is: the DSL triages it."
_SUBJECT_NOTE = (
    "Someone this concern is about would normally be told of it: they are not, and the next person in line "
    "receives it instead."
)
_HEADTEACHER_NOTE = "This concern is about the headteacher: it goes to the named governor, not the headteacher."
_CONFIRM_NOTE = (
    "Subject to confirm: who this concern is about is not certain. Everyone it could be is left out and listed "
    "as a possible subject; it goes to whoever is left in the allegations chain, who confirms who it is."
)
_OUTSIDE_NOTE = (
    "Everyone inside the school who would handle this concern is, or may be, its subject: it goes to the LADO "
    "and the trust's safeguarding lead."
)
_OUTSIDE_ALERT = "error: nobody inside the school can safely be told about concern {reference}: sent outside"
_NOBODY_ALERT = "error: nobody the policy names can safely be told about concern {reference}: call the LADO now"


class RulesOutcome(NamedTuple):
    """What the matching rules ask for together, before the safety floor."""

    rule_ids: tuple[str, ...]
    recognised: str | None
    urgency: Urgency | None
    roles: frozenset[SchoolRole]
    parents: ParentNotification
    guidance: tuple[str, ...]
    reporter_is_subject: bool
    formal_record: bool


def rules_outcome(matched: tuple[Rule, ...], *, policy: Policy) -> RulesOutcome:
    """Combine the matching rules: first category, highest urgency, everyone named, most cautious parents."""
    rule_ids = tuple(rule.id for rule in matched)
    # The same few combinations of rules recur, and the answer depends on nothing else: memoised per policy.
    key = ("rules_outcome", rule_ids)
    known = policy.engine_cache.get(key)
    if known is not None:
        return known  # type: ignore[no-any-return]
    actions = [rule.then for rule in matched]
    # A rule that sets a category says what the concern is; rules that only add guidance or people do not.
    recognised = next((a.category for a in actions if a.category), None)
    fallback = [] if recognised else [policy.fallback.guidance.strip()]
    outcome = RulesOutcome(
        rule_ids=rule_ids,
        recognised=recognised,
        urgency=max((a.urgency for a in actions if a.urgency), key=lambda u: u.rank, default=None),
        roles=frozenset(role for a in actions for role in a.notify),
        parents=floor.parents_from_rules(actions, matched=bool(matched)),
        guidance=tuple(a.guidance.strip() for a in actions) + tuple(fallback),
        reporter_is_subject=any(a.reporter_is_subject for a in actions),
        formal_record=any(a.formal_record for a in actions),
    )
    if len(policy.engine_cache) < floor.CACHE_LIMIT:
        policy.engine_cache[key] = outcome
    return outcome


def decide(concern: ConcernReceivedPayload, policy: Policy) -> Decision:
    """Apply the policy's rules and then the safety floor to one concern."""
    facts = facts_of(concern)
    matched = matching_rules(facts, policy=policy)
    asked = rules_outcome(matched, policy=policy)
    engaged: list[str] = []
    notes: list[str] = []

    found = find_subjects(concern, policy=policy, reporter_is_subject=asked.reporter_is_subject)
    subjects = found.excluded
    category = asked.recognised or policy.fallback.category
    default, least = urgency_floor.kind_urgencies(concern.kind, policy=policy)
    urgency = asked.urgency or default
    roles = set(asked.roles)
    alerts: list[str] = []

    if least is not None and urgency.rank < least.rank:
        urgency = least
        engaged.append(floor.URGENT_BY_NATURE)
        notes.append(_KIND_NOTE.format(urgency=least.value))
    if concern.immediate_risk is RiskAnswer.yes:
        if urgency is not Urgency.immediate or not {floor.DSL, floor.DEPUTY} <= roles:
            engaged.append(floor.IMMEDIATE_RISK)
        urgency = Urgency.immediate
        roles |= {floor.DSL, floor.DEPUTY}
        notes.append(_IMMEDIATE_NOTE)
    elif concern.immediate_risk in urgency_floor.UNASSESSED:
        if urgency.rank < Urgency.high.rank or floor.DSL not in roles:
            engaged.append(floor.RISK_UNASSESSED)
        urgency = max(urgency, Urgency.high, key=lambda u: u.rank)
        roles.add(floor.DSL)
        notes.append(urgency_floor.UNASSESSED_RISK_NOTE)
    if asked.recognised is None:
        if floor.DSL not in roles:
            engaged.append(floor.UNMATCHED)
        roles.add(floor.DSL)
        notes.append(_UNMATCHED_NOTE)
    if found.to_confirm:
        # The allegations chain: the headteacher, or the named governor when the head may be the subject.
        roles.add(floor.HEADTEACHER)
        engaged.append(floor.SUBJECT_TO_CONFIRM)
        notes.append(_CONFIRM_NOTE)

    adult_subject = floor.adult_working_with_children_is_subject(facts, subjects=subjects, policy=policy)
    parents, parent_floor = floor.parent_notification(facts, from_rules=asked.parents, adult_subject=adult_subject)
    changed = parents is not asked.parents  # the floor returns the rules' own answer when it keeps it
    if changed:
        engaged.extend(parent_floor)  # listed only when the floor changed what the rules said
    if floor.PARENTS_RISK in parent_floor or floor.PARENTS_HARM in parent_floor:
        if floor.DSL not in roles and not changed:
            engaged.extend(parent_floor)
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
    if not any(floor.inside_school(r, policy=policy) for r in recipients):
        recipients, notify_roles, _ = floor.resolve_recipients(floor.OUTSIDE, subjects=subjects, policy=policy)
        engaged.append(floor.NOBODY_INSIDE)
        notes.append(_OUTSIDE_NOTE)
        alert = _OUTSIDE_ALERT if recipients else _NOBODY_ALERT
        alerts.append(alert.format(reference=concern.reference))
    if passed_over:
        engaged.append(floor.NEVER_NOTIFY_SUBJECT)
        notes.append(_SUBJECT_NOTE)

    received_on = policy.calendar.local(concern.received_at).date()
    overdue = received_on > policy.source.next_review
    if overdue:
        notes.append(_overdue_note(policy))
    guidance = _unique([*asked.guidance, *notes])
    return Decision(
        reference=concern.reference,
        school_id=policy.school.id,
        category=category,
        urgency=urgency,
        notify_roles=notify_roles,
        recipients=recipients,
        parent_notification=parents,
        deadlines=_deadlines(concern.received_at, urgency=urgency, matched=matched, policy=policy),
        guidance=guidance,
        rule_ids=asked.rule_ids,
        safety_floor=tuple(engaged),
        subject_person_ids=tuple(sorted(found.subjects)),
        possible_subjects=tuple(
            PossibleSubjectRef(person_id=p.person_id, name=_name_of(p.person_id, policy=policy), why=p.why)
            for p in found.possible
        ),
        subject_to_confirm=found.to_confirm,
        subject_notes=found.unresolved,
        alerts=tuple(alerts),
        formal_record_required=asked.formal_record,
        policy_version=policy.version,
        policy_digest=policy.digest,
        policy_review_overdue=overdue,
    )


def acknowledge_by(since: datetime, *, urgency: Urgency, policy: Policy) -> datetime:
    """When a notification sent at `since` must be acknowledged, by the policy's time for `urgency`."""
    return due_at(since, within=urgency_floor.acknowledge_within(urgency, policy=policy), calendar=policy.calendar)


def _deadlines(
    received_at: datetime, *, urgency: Urgency, matched: tuple[Rule, ...], policy: Policy
) -> tuple[Deadline, ...]:
    within = urgency_floor.acknowledge_within(urgency, policy=policy)
    earliest: dict[str, Deadline] = {
        ACKNOWLEDGE: Deadline(
            kind=ACKNOWLEDGE,
            due_at=due_at(received_at, within=within, calendar=policy.calendar),
            description=within.acknowledge_text,
            rule_id=None,
        )
    }
    for rule in matched:
        for wanted in rule.then.deadlines:
            deadline = Deadline(
                kind=wanted.kind,
                due_at=due_at(received_at, within=wanted.within, calendar=policy.calendar),
                description=wanted.description,
                rule_id=rule.id,
            )
            current = earliest.get(wanted.kind)
            if current is None or deadline.due_at < current.due_at:
                earliest[wanted.kind] = deadline
    return tuple(sorted(earliest.values(), key=lambda d: (d.due_at, d.kind)))


def _overdue_note(policy: Policy) -> str:
    note = policy.engine_cache.get("overdue_note")
    if note is None:
        note = policy.engine_cache["overdue_note"] = (
            f"The school's policy was due for review by {policy.source.next_review.isoformat()}: "
            "it is overdue for review."
        )
    return note


def _name_of(person_id: str, *, policy: Policy) -> str:
    person = policy.person(person_id)
    return person.name if person is not None else person_id


def _unique(texts: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in texts if t))


def escalation_ladder(decision: Decision, *, policy: Policy) -> tuple[EscalationRung, ...]:
    """Who is told next, rung by rung, when nobody acknowledges: DSL, deputies, then the headteacher.

    People already told and people the concern is about are skipped; when the headteacher is a subject,
    the named governor takes the headteacher's rung.
    """
    subjects = decision.excluded_person_ids
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
