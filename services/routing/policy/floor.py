"""The safety floor: protections kept in code because no policy file may switch them off."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.routing.policy.decision import ParentNotification, Recipient
from services.routing.policy.model import ParentDecision, Person, Policy, SchoolRole, Then
from shared.contracts.concern import ADULTS_WORKING_WITH_CHILDREN, ConcernReport, Involvement, PersonRole

DSL = SchoolRole.designated_safeguarding_lead
DEPUTY = SchoolRole.deputy_designated_safeguarding_lead
HEADTEACHER = SchoolRole.headteacher
NAMED_GOVERNOR = SchoolRole.named_governor
LADO = SchoolRole.local_authority_designated_officer

# Who takes a role's place when nobody in it may be told (they are the subject, or the role is empty).
# Every line ends outside the school, so a concern implicating its whole leadership still reaches someone.
NEXT_IN_LINE: dict[SchoolRole, tuple[SchoolRole, ...]] = {
    DSL: (DEPUTY, HEADTEACHER, NAMED_GOVERNOR, LADO),
    DEPUTY: (DSL, HEADTEACHER, NAMED_GOVERNOR, LADO),
    HEADTEACHER: (NAMED_GOVERNOR, DSL, DEPUTY, LADO),
    NAMED_GOVERNOR: (HEADTEACHER, DSL, DEPUTY, LADO),
    SchoolRole.pastoral_lead: (DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR, LADO),
    SchoolRole.leadership_team: (HEADTEACHER, DSL, DEPUTY, NAMED_GOVERNOR, LADO),
    LADO: (DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR),
}
ROLE_ORDER = tuple(SchoolRole)

NEVER_NOTIFY_SUBJECT = "never_notify_subject"
HEADTEACHER_SUBJECT = "headteacher_subject_goes_to_named_governor"
IMMEDIATE_RISK = "immediate_risk_is_immediate_and_reaches_dsl"
UNMATCHED = "unmatched_goes_to_dsl"
NOBODY_ELSE = "dsl_when_no_one_else_is_named"
PARENTS_RISK = "parents_withheld_telling_may_increase_risk"
PARENTS_HARM = "parents_withheld_harm_from_parent_or_carer"
PARENTS_ADULT = "parents_not_informed_adult_subject"
PARENTS_PARENT_SUBJECT = "parents_not_informed_parent_subject"


class NoEligibleRecipientError(RuntimeError):
    """Everyone the policy names is a subject of the concern, so nobody can be told safely."""


def subject_person_ids(concern: ConcernReport, *, policy: Policy, reporter_is_subject: bool = False) -> frozenset[str]:
    """Ids of everyone the concern is about, by id, by name, and every headteacher if the head is a subject."""
    ids: set[str] = set()
    for person in concern.subjects():
        if person.person_id:
            ids.add(person.person_id)
        if person.name:
            ids.update(policy.people_named(person.name))
        if person.role is PersonRole.headteacher:
            ids.update(p.id for p in policy.holders(HEADTEACHER))
    if reporter_is_subject and concern.reporter.person_id:
        ids.add(concern.reporter.person_id)
    return frozenset(ids)


def headteacher_is_subject(subjects: frozenset[str], *, policy: Policy) -> bool:
    """Whether anyone holding the headteacher role is a subject of the concern."""
    return any(p.id in subjects for p in policy.holders(HEADTEACHER))


def adult_working_with_children_is_subject(concern: ConcernReport, *, subjects: frozenset[str], policy: Policy) -> bool:
    """Whether the concern is about staff, a volunteer, a contractor, a governor or the headteacher."""
    if any(p.role in ADULTS_WORKING_WITH_CHILDREN for p in concern.subjects()):
        return True
    return any((person := policy.person(pid)) is not None and not person.external for pid in subjects)


_CAUTION = {ParentDecision.not_applicable: 0, ParentDecision.inform: 1, ParentDecision.withhold: 2}
_DEFAULT_REASON = {
    ParentDecision.inform: "The policy says parents or carers are informed.",
    ParentDecision.withhold: "The DSL decides whether and when parents or carers are told.",
    ParentDecision.not_applicable: "The policy does not ask for parents or carers to be informed.",
}
_UNMATCHED_REASON = "No rule matched this concern: the DSL decides whether and when parents or carers are told."
_RISK_REASON = (
    "The report says telling the child's parents or carers could put the child at greater risk: "
    "they are not informed, and the DSL decides what happens next."
)
_HARM_REASON = (
    "The concern is about harm from a parent or carer: they are not informed, and the DSL decides what happens next."
)
_ADULT_REASON = (
    "The concern is about an adult who works with children: the system does not inform parents or "
    "carers; the DSL decides what they are told, following the allegations procedure."
)
_PARENT_SUBJECT_REASON = (
    "The concern is about a parent or carer: the system does not inform parents or carers; the DSL decides."
)


def parent_notification(
    concern: ConcernReport,
    *,
    actions: Sequence[Then],
    adult_subject: bool,
    matched: bool,
) -> tuple[ParentNotification, list[str]]:
    """The parents/carers decision: the most cautious rule, then the floor, which only ever withholds."""
    stated = [a for a in actions if a.parents is not None]
    if stated:
        strongest = max(stated, key=lambda a: _CAUTION[a.parents])  # type: ignore[index]
        decision = strongest.parents or ParentDecision.not_applicable
        reason = strongest.parents_reason.strip() or _DEFAULT_REASON[decision]
    elif matched:
        decision, reason = ParentDecision.not_applicable, _DEFAULT_REASON[ParentDecision.not_applicable]
    else:
        decision, reason = ParentDecision.withhold, _UNMATCHED_REASON
    engaged: list[str] = []
    withheld: list[str] = []
    if concern.telling_parents_may_increase_risk:
        engaged.append(PARENTS_RISK)
        withheld.append(_RISK_REASON)
    perpetrator_parent = any(
        p.role is PersonRole.parent_carer and p.involvement is Involvement.alleged_perpetrator for p in concern.people
    )
    if concern.harm_from_parent_or_carer or perpetrator_parent:
        engaged.append(PARENTS_HARM)
        withheld.append(_HARM_REASON)
    if adult_subject:
        engaged.append(PARENTS_ADULT)
        if decision is ParentDecision.inform and not withheld:
            withheld.append(_ADULT_REASON)
    if any(p.role is PersonRole.parent_carer for p in concern.subjects()) and not withheld:
        if decision is ParentDecision.inform:
            engaged.append(PARENTS_PARENT_SUBJECT)
            withheld.append(_PARENT_SUBJECT_REASON)
    if withheld:
        return ParentNotification(decision=ParentDecision.withhold, reason=" ".join(withheld)), engaged
    return ParentNotification(decision=decision, reason=reason), engaged


def recipient(person: Person, *, role: SchoolRole, policy: Policy) -> Recipient:
    """`person` as a recipient told in `role` (built once per policy: people do not change within one)."""
    cache = policy.recipient_cache
    key = (person.id, role)
    built = cache.get(key)
    if built is None:
        built = Recipient(person_id=person.id, name=person.name, role=role, channels=person.contact)
        cache[key] = built
    return built


def resolve_recipients(
    roles: Iterable[SchoolRole], *, subjects: frozenset[str], policy: Policy
) -> tuple[tuple[Recipient, ...], tuple[SchoolRole, ...], bool]:
    """People to tell for `roles`, never a subject; an emptied role passes to the next in line.

    Returns the recipients, the roles they are told in, and whether a subject was passed over.
    """
    wanted = set(roles)
    recipients: list[Recipient] = []
    told_in: list[SchoolRole] = []
    seen: set[str] = set()
    passed_over = False
    for role in ROLE_ORDER:
        if role not in wanted:
            continue
        for candidate in (role, *NEXT_IN_LINE[role]):
            holders = policy.holders(candidate)
            eligible = [p for p in holders if p.id not in subjects]
            passed_over = passed_over or len(eligible) < len(holders)
            if eligible:
                break
        else:
            continue
        if candidate not in told_in:
            told_in.append(candidate)
        for person in eligible:
            if person.id not in seen:
                seen.add(person.id)
                recipients.append(recipient(person, role=candidate, policy=policy))
    order = {role: index for index, role in enumerate(ROLE_ORDER)}
    return tuple(recipients), tuple(sorted(told_in, key=order.__getitem__)), passed_over
