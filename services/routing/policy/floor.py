"""The safety floor: protections kept in code because no policy file may switch them off."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.routing.policy.decision import ParentNotification, Recipient
from services.routing.policy.match import ConcernFacts
from services.routing.policy.model import ParentDecision, Person, Policy, SchoolRole, Then
from services.routing.policy.vocabulary import DEPUTY, DSL, HEADTEACHER, LADO, NAMED_GOVERNOR, TRUST_LEAD
from shared.contracts.concern import ADULTS_WORKING_WITH_CHILDREN, PersonRole

_LEADS = (DSL, DEPUTY, HEADTEACHER, NAMED_GOVERNOR)
_OUTSIDE = (LADO, TRUST_LEAD)

# Who takes a role's place when nobody in it may be told (they are the subject, or the role is empty).
# Every line ends outside the school, so a concern implicating its whole leadership still reaches someone.
NEXT_IN_LINE: dict[SchoolRole, tuple[SchoolRole, ...]] = {
    DSL: (DEPUTY, HEADTEACHER, NAMED_GOVERNOR, *_OUTSIDE),
    DEPUTY: (DSL, HEADTEACHER, NAMED_GOVERNOR, *_OUTSIDE),
    HEADTEACHER: (NAMED_GOVERNOR, DSL, DEPUTY, *_OUTSIDE),
    NAMED_GOVERNOR: (HEADTEACHER, DSL, DEPUTY, *_OUTSIDE),
    SchoolRole.pastoral_lead: (*_LEADS, *_OUTSIDE),
    SchoolRole.leadership_team: (HEADTEACHER, DSL, DEPUTY, NAMED_GOVERNOR, *_OUTSIDE),
    LADO: (TRUST_LEAD, *_LEADS),
    TRUST_LEAD: (LADO, *_LEADS),
    SchoolRole.online_safety_lead: (*_LEADS, *_OUTSIDE),
    SchoolRole.behaviour_lead: (SchoolRole.pastoral_lead, *_LEADS, *_OUTSIDE),
    SchoolRole.head_of_year: (SchoolRole.pastoral_lead, *_LEADS, *_OUTSIDE),
    SchoolRole.class_teacher: (SchoolRole.head_of_year, SchoolRole.pastoral_lead, *_LEADS, *_OUTSIDE),
    SchoolRole.line_manager: (HEADTEACHER, DSL, DEPUTY, NAMED_GOVERNOR, *_OUTSIDE),
    SchoolRole.data_protection_officer: (HEADTEACHER, DSL, DEPUTY, NAMED_GOVERNOR, *_OUTSIDE),
    SchoolRole.trust_administrator: (*_LEADS, *_OUTSIDE),
}
ROLE_ORDER = tuple(SchoolRole)

NEVER_NOTIFY_SUBJECT = "never_notify_subject"
HEADTEACHER_SUBJECT = "headteacher_subject_goes_to_named_governor"
IMMEDIATE_RISK = "immediate_risk_is_immediate_and_reaches_dsl"
UNMATCHED = "unmatched_goes_to_dsl"
NOBODY_ELSE = "dsl_when_no_one_else_is_named"
URGENT_BY_NATURE = "urgent_by_nature_kind_not_lowered"
RISK_UNASSESSED = "risk_not_assessed_is_high_and_reaches_dsl"
SUBJECT_TO_CONFIRM = "subject_to_confirm_goes_up_the_allegations_chain"
NOBODY_INSIDE = "nobody_inside_left_goes_to_lado_and_trust"
OUTSIDE = frozenset(_OUTSIDE)
PARENTS_RISK = "parents_withheld_telling_may_increase_risk"
PARENTS_HARM = "parents_withheld_harm_from_parent_or_carer"
PARENTS_ADULT = "parents_not_informed_adult_subject"
PARENTS_PARENT_SUBJECT = "parents_not_informed_parent_subject"


class NoEligibleRecipientError(RuntimeError):
    """Kept for callers of older versions: `decide` now sends such a concern outside and raises an alert."""


def inside_school(told: Recipient, *, policy: Policy) -> bool:
    """Whether a recipient is one of the school's own people (not the LADO or the trust)."""
    person = policy.person(told.person_id)
    return person is not None and not person.external


def headteacher_is_subject(subjects: frozenset[str], *, policy: Policy) -> bool:
    """Whether anyone holding the headteacher role is a subject of the concern."""
    return any(p.id in subjects for p in policy.holders(HEADTEACHER))


def adult_working_with_children_is_subject(facts: ConcernFacts, *, subjects: frozenset[str], policy: Policy) -> bool:
    """Whether the concern is about staff, a volunteer, a contractor, a governor or the headteacher."""
    if not facts.subject_roles.isdisjoint(ADULTS_WORKING_WITH_CHILDREN):
        return True
    return any((person := policy.person(pid)) is not None and not person.external for pid in subjects)


_CHILDREN = frozenset({PersonRole.learner, PersonRole.former_learner})
_CAUTION = {
    ParentDecision.not_applicable: 0,
    ParentDecision.inform: 1,
    ParentDecision.dsl_decides: 2,
    ParentDecision.must_not_tell: 3,
}
_DEFAULT_REASON = {
    ParentDecision.inform: "The policy says parents or carers are informed.",
    ParentDecision.dsl_decides: "The DSL decides whether and when parents or carers are told.",
    ParentDecision.must_not_tell: "The policy says the system must not tell parents or carers; the DSL decides.",
    ParentDecision.not_applicable: "The policy does not ask for parents or carers to be informed.",
}
_UNSTATED_REASON = "No matching rule says whether parents or carers are told: the DSL decides."
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


def parents_from_rules(actions: Sequence[Then], *, matched: bool) -> ParentNotification:
    """What the matching rules say about parents: the most cautious stated, else the DSL decides."""
    stated = [a for a in actions if a.parents is not None]
    if not stated:
        return ParentNotification(
            decision=ParentDecision.dsl_decides, reason=_UNSTATED_REASON if matched else _UNMATCHED_REASON
        )
    strongest = max(stated, key=lambda a: _CAUTION[a.parents])  # type: ignore[index]
    decision = strongest.parents or ParentDecision.not_applicable
    return ParentNotification(decision=decision, reason=strongest.parents_reason.strip() or _DEFAULT_REASON[decision])


def parent_notification(
    facts: ConcernFacts, *, from_rules: ParentNotification, adult_subject: bool
) -> tuple[ParentNotification, tuple[str, ...]]:
    """The parents/carers decision: the rules' answer, then the floor, which only ever makes it must-not-tell."""
    decision = from_rules.decision
    engaged: list[str] = []
    withheld: list[str] = []
    if facts.telling_parents_may_increase_risk:
        engaged.append(PARENTS_RISK)
        withheld.append(_RISK_REASON)
    if facts.harm_from_parent_or_carer or (
        PersonRole.parent_carer in facts.alleged_perpetrator_roles and not facts.involved_roles.isdisjoint(_CHILDREN)
    ):
        engaged.append(PARENTS_HARM)
        withheld.append(_HARM_REASON)
    if adult_subject:
        engaged.append(PARENTS_ADULT)
        if decision is ParentDecision.inform and not withheld:
            withheld.append(_ADULT_REASON)
    if PersonRole.parent_carer in facts.subject_roles and decision is ParentDecision.inform and not withheld:
        engaged.append(PARENTS_PARENT_SUBJECT)
        withheld.append(_PARENT_SUBJECT_REASON)
    if not withheld or decision is ParentDecision.must_not_tell:
        return from_rules, tuple(engaged)
    return ParentNotification(decision=ParentDecision.must_not_tell, reason=" ".join(withheld)), tuple(engaged)


def recipient(person: Person, *, role: SchoolRole, policy: Policy) -> Recipient:
    """`person` as a recipient told in `role` (built once per policy: people do not change within one)."""
    cache = policy.engine_cache
    key = ("recipient", person.id, role)
    built = cache.get(key)
    if built is None:
        built = cache[key] = Recipient(person_id=person.id, name=person.name, role=role, channels=person.contact)
    return built


CACHE_LIMIT = 10_000
Resolved = tuple[tuple[Recipient, ...], tuple[SchoolRole, ...], bool]


def resolve_recipients(roles: Iterable[SchoolRole], *, subjects: frozenset[str], policy: Policy) -> Resolved:
    """People to tell for `roles`, never a subject; an emptied role passes to the next in line.

    Returns the recipients, the roles they are told in, and whether a subject was passed over.
    """
    # The answer depends only on the roles and on which of the policy's own people are subjects: memoised.
    key = ("resolved", frozenset(roles), subjects & policy.person_ids)
    cache = policy.engine_cache
    resolved = cache.get(key)
    if resolved is None:
        resolved = _resolve(key[1], subjects=key[2], policy=policy)
        if len(cache) < CACHE_LIMIT:
            cache[key] = resolved
    return resolved


def _resolve(wanted: frozenset[SchoolRole], *, subjects: frozenset[str], policy: Policy) -> Resolved:
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
    return tuple(recipients), tuple(sorted(told_in, key=ROLE_ORDER.index)), passed_over
