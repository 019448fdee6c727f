"""Whether a rule's conditions hold for a concern, and whether two rules could ever hold together."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from services.routing.policy.model import ANONYMOUS, AgeRange, Policy, Rule, When, platform_key
from shared.contracts.concern import ConcernReport, Involvement, PersonRole, RiskAnswer

_ABOUT = frozenset({Involvement.subject, Involvement.alleged_perpetrator})


class ConcernFacts(NamedTuple):
    """The facts about a concern that rules look at, worked out once per concern."""

    kind: str
    subjects: tuple[tuple[PersonRole, int | None], ...]
    subject_roles: frozenset[PersonRole]
    involved_roles: frozenset[PersonRole]
    reported_by: frozenset[str]
    reporter_age: int | None
    platform: str | None
    in_school_hours: bool | None
    on_school_device: bool | None
    immediate_risk: RiskAnswer
    harm_from_parent_or_carer: bool
    telling_parents_may_increase_risk: bool
    alleged_perpetrator_roles: frozenset[PersonRole]


# Reports name the same few platforms again and again; folding a name is a regular expression.
_fold_platform = lru_cache(maxsize=1024)(platform_key)


def facts_of(concern: ConcernReport) -> ConcernFacts:
    """The facts rules match on, from a concern."""
    subjects = tuple((p.role, p.age) for p in concern.people if p.involvement in _ABOUT)
    reporter = concern.reporter
    reported_by = frozenset(
        ([reporter.role.value] if reporter.role is not None else []) + ([ANONYMOUS] if reporter.anonymous else [])
    )
    return ConcernFacts(
        concern.kind,
        subjects,
        frozenset(role for role, _ in subjects),
        frozenset(p.role for p in concern.people),
        reported_by,
        reporter.age,
        (_fold_platform(concern.platform) or None) if concern.platform else None,
        concern.in_school_hours,
        concern.on_school_device,
        concern.immediate_risk,
        concern.harm_from_parent_or_carer,
        concern.telling_parents_may_increase_risk,
        frozenset(p.role for p in concern.people if p.involvement is Involvement.alleged_perpetrator),
    )


Test = Callable[[ConcernFacts], bool]


def _flag_is(flag: str, *, wanted: bool) -> Test:
    return lambda facts: getattr(facts, flag) is wanted


def _compile(when: When, *, check_kind: bool) -> Test:
    """One function testing every condition `when` gives, and no others."""
    tests: list[Test] = []
    if check_kind and when.kinds is not None:
        kinds = frozenset(when.kinds)
        tests.append(lambda f: f.kind in kinds)
    if when.about is not None:
        about = frozenset(when.about)
        tests.append(lambda f: not f.subject_roles.isdisjoint(about))
    if when.involving is not None:
        involving = frozenset(when.involving)
        tests.append(lambda f: not f.involved_roles.isdisjoint(involving))
    if when.reported_by is not None:
        reported_by = frozenset(when.reported_by)
        tests.append(lambda f: not f.reported_by.isdisjoint(reported_by))
    if when.platforms is not None:
        platforms = frozenset(when.platforms)
        tests.append(lambda f: f.platform in platforms)
    if when.immediate_risk is not None:
        # `immediate_risk: false` matches only the answer "no": "not sure" and "not answered" are not no.
        answer = RiskAnswer.yes if when.immediate_risk else RiskAnswer.no
        tests.append(lambda f: f.immediate_risk is answer)
    for flag in ("in_school_hours", "on_school_device", "harm_from_parent_or_carer"):
        wanted = getattr(when, flag)
        if wanted is not None:
            tests.append(_flag_is(flag, wanted=wanted))
    if when.reporter_age is not None:
        reporter_ages = when.reporter_age
        tests.append(lambda f: f.reporter_age is not None and reporter_ages.contains(f.reporter_age))
    if when.subject_age is not None:
        subject_ages, of_roles = when.subject_age, when.about
        tests.append(
            lambda f: any(
                age is not None and subject_ages.contains(age) and (of_roles is None or role in of_roles)
                for role, age in f.subjects
            )
        )
    if not tests:
        return lambda f: True
    if len(tests) == 1:
        return tests[0]

    def all_hold(facts: ConcernFacts) -> bool:
        # A plain loop rather than all(...): this runs for every rule a concern might match.
        for test in tests:  # noqa: SIM110
            if not test(facts):
                return False
        return True

    return all_hold


def candidate_rules(policy: Policy, *, kind: str) -> tuple[tuple[Rule, Test], ...]:
    """The rules that could match a concern of `kind`, in file order, each with its compiled test."""
    index = policy.engine_cache.get("rules_by_kind")
    if index is None:
        # Matching only a kind's own rules (and those for any kind) keeps a decision cheap; tests compile once.
        compiled = [(rule, _compile(rule.when, check_kind=False)) for rule in policy.rules]
        index = {
            known.id: tuple(pair for pair in compiled if pair[0].when.kinds is None or known.id in pair[0].when.kinds)
            for known in policy.kinds
        }
        index[None] = tuple(pair for pair in compiled if pair[0].when.kinds is None)
        policy.engine_cache["rules_by_kind"] = index
    found = index.get(kind)
    return found if found is not None else index[None]


def matching_rules(facts: ConcernFacts, *, policy: Policy) -> tuple[Rule, ...]:
    """Every rule of the policy whose conditions hold for the concern, in file order."""
    matched = []
    for rule, test in candidate_rules(policy, kind=facts.kind):
        if test(facts):
            matched.append(rule)
    return tuple(matched)


def _ages_meet(first: AgeRange | None, second: AgeRange | None) -> bool:
    if first is None or second is None:
        return True
    low = max(first.at_least or 0, second.at_least or 0)
    high = min(x for x in (first.under, second.under, 10_000) if x is not None)
    return low < high


def _lists_meet(first: tuple[object, ...] | None, second: tuple[object, ...] | None) -> bool:
    return first is None or second is None or not set(first).isdisjoint(second)


def _flags_meet(first: bool | None, second: bool | None) -> bool:
    return first is None or second is None or first is second


def could_both_match(first: When, *, second: When) -> bool:
    """Whether some concern could satisfy both sets of conditions (reading `about` as one kind of subject)."""
    return (
        _lists_meet(first.kinds, second.kinds)
        and _lists_meet(first.about, second.about)
        and _lists_meet(first.reported_by, second.reported_by)
        and _lists_meet(first.platforms, second.platforms)
        and _flags_meet(first.in_school_hours, second.in_school_hours)
        and _flags_meet(first.on_school_device, second.on_school_device)
        and _flags_meet(first.immediate_risk, second.immediate_risk)
        and _flags_meet(first.harm_from_parent_or_carer, second.harm_from_parent_or_carer)
        and _ages_meet(first.subject_age, second.subject_age)
        and _ages_meet(first.reporter_age, second.reporter_age)
    )


def why_never_matches(when: When) -> list[str]:
    """Reasons the conditions can never hold for any concern (empty when they can)."""
    reasons = []
    for label, ages in (("subject_age", when.subject_age), ("reporter_age", when.reporter_age)):
        if ages is not None and not _ages_meet(ages, _POSSIBLE_AGES):
            reasons.append(f"{label} admits no age from 0 to 130")
    return reasons


_POSSIBLE_AGES = AgeRange(at_least=0, under=131)
