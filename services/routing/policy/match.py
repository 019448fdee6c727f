"""Whether a rule's conditions hold for a concern, and whether two rules could ever hold together."""

from __future__ import annotations

from dataclasses import dataclass

from services.routing.policy.model import ANONYMOUS, AgeRange, When, platform_key
from shared.contracts.concern import ConcernReport, PersonRole


@dataclass(frozen=True, slots=True)
class ConcernFacts:
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
    immediate_risk: bool
    harm_from_parent_or_carer: bool


def facts_of(concern: ConcernReport) -> ConcernFacts:
    """The facts rules match on, from a concern."""
    subjects = tuple((p.role, p.age) for p in concern.subjects())
    reporter = concern.reporter
    reported_by = {reporter.role.value} if reporter.role is not None else set()
    if reporter.anonymous:
        reported_by.add(ANONYMOUS)
    return ConcernFacts(
        kind=concern.kind,
        subjects=subjects,
        subject_roles=frozenset(role for role, _ in subjects),
        involved_roles=frozenset(p.role for p in concern.people),
        reported_by=frozenset(reported_by),
        reporter_age=reporter.age,
        platform=platform_key(concern.platform) if concern.platform else None,
        in_school_hours=concern.in_school_hours,
        on_school_device=concern.on_school_device,
        immediate_risk=concern.immediate_risk,
        harm_from_parent_or_carer=concern.harm_from_parent_or_carer,
    )


def _subject_age_holds(when: When, facts: ConcernFacts, ages: AgeRange) -> bool:
    about = when.about
    return any(
        age is not None and ages.contains(age) and (about is None or role in about) for role, age in facts.subjects
    )


def matches(when: When, facts: ConcernFacts) -> bool:
    """Whether every condition in `when` holds; an unknown fact never satisfies a condition on it."""
    if when.kinds is not None and facts.kind not in when.kinds:
        return False
    if when.about is not None and facts.subject_roles.isdisjoint(when.about):
        return False
    if when.involving is not None and facts.involved_roles.isdisjoint(when.involving):
        return False
    if when.reported_by is not None and facts.reported_by.isdisjoint(when.reported_by):
        return False
    if when.platforms is not None and facts.platform not in when.platforms:
        return False
    if when.in_school_hours is not None and facts.in_school_hours is not when.in_school_hours:
        return False
    if when.on_school_device is not None and facts.on_school_device is not when.on_school_device:
        return False
    if when.immediate_risk is not None and facts.immediate_risk is not when.immediate_risk:
        return False
    if when.harm_from_parent_or_carer is not None and facts.harm_from_parent_or_carer is not (
        when.harm_from_parent_or_carer
    ):
        return False
    if when.reporter_age is not None and (
        facts.reporter_age is None or not when.reporter_age.contains(facts.reporter_age)
    ):
        return False
    return when.subject_age is None or _subject_age_holds(when, facts, when.subject_age)


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


def could_both_match(first: When, second: When) -> bool:
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
