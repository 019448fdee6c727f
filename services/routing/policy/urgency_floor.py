"""The floor under urgency and time: kinds urgent by their nature, unanswered risk, and how long is too long.

No policy file can lower these; docs/policy-format.md gives the source for each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from services.routing.policy.model import Policy, Urgency, Within
from shared.contracts.concern import RiskAnswer


class UrgentKind(NamedTuple):
    """A kind of concern that is at least `urgency` whatever a policy says, and why."""

    urgency: Urgency
    source: str


# Kinds of concern whose nature makes them urgent (by the kind's id in the shared vocabulary).
URGENT_BY_NATURE: dict[str, UrgentKind] = {
    "sexual_images": UrgentKind(
        Urgency.high,
        "UKCIS, Sharing nudes and semi-nudes (2024): every incident is reported to the DSL immediately; "
        "an adult sharing images of a child is referred to the police as a matter of urgency",
    ),
    "grooming_or_exploitation": UrgentKind(
        Urgency.high,
        "KCSIE 2024 Part one: a child at risk of harm is referred to children's social care and/or the police "
        "immediately; contact risk includes adults posing as children to groom or exploit them",
    ),
    "child_protection_risk": UrgentKind(
        Urgency.high,
        "KCSIE 2024 Part one and Working Together 2023: concerns about a child's welfare are acted on "
        "immediately and referred without delay when a child may be suffering significant harm",
    ),
    "self_harm_suicide_content": UrgentKind(
        Urgency.high,
        "KCSIE 2024 Part two (online safety): content risk includes self-harm and suicide; a child at risk "
        "of harm is referred immediately",
    ),
    "meeting_online_friend": UrgentKind(
        Urgency.high,
        "KCSIE 2024 Part two (online safety): contact risk, adults posing as children to groom or exploit them",
    ),
    "unknown_adult_contact": UrgentKind(
        Urgency.high,
        "KCSIE 2024 Part two (online safety): contact risk, adults posing as children to groom or exploit them",
    ),
}

# The longest any policy may give for acknowledging an urgency, in wall-clock time (never working time).
LONGEST_WAIT: dict[Urgency, timedelta] = {
    Urgency.immediate: timedelta(minutes=15),
    Urgency.high: timedelta(hours=1),
}

_CACHE_LIMIT = 10_000
UNASSESSED_RISK_NOTE = "Risk not yet assessed — DSL to assess now."
UNASSESSED = frozenset({RiskAnswer.not_sure, RiskAnswer.not_answered})


def kind_urgencies(kind: str, *, policy: Policy) -> tuple[Urgency, Urgency | None]:
    """A kind's urgency when no rule sets one, and the least it may have (worked out once per policy and kind)."""
    key = ("kind_urgencies", kind)
    known = policy.engine_cache.get(key)
    if known is None:
        listed = policy.kinds_by_id.get(kind)
        # The kind's default applies, but never below the fallback's: a concern nobody recognises is not calm.
        default = max(
            (u for u in (listed.default_urgency if listed else None, policy.fallback.urgency) if u is not None),
            key=lambda u: u.rank,
        )
        known = (default, kind_minimum(kind, policy=policy))
        if len(policy.engine_cache) < _CACHE_LIMIT:
            policy.engine_cache[key] = known
    return known  # type: ignore[no-any-return]


def kind_minimum(kind: str, *, policy: Policy) -> Urgency | None:
    """The least urgency a concern of `kind` may have: the code's floor, or the policy's own if higher."""
    floors = [u for u in (_code_floor(kind), _policy_floor(kind, policy=policy)) if u is not None]
    return max(floors, key=lambda u: u.rank, default=None)


def _code_floor(kind: str) -> Urgency | None:
    urgent = URGENT_BY_NATURE.get(kind)
    return urgent.urgency if urgent else None


def _policy_floor(kind: str, *, policy: Policy) -> Urgency | None:
    listed = policy.kinds_by_id.get(kind)
    return listed.min_urgency if listed else None


def clock_time(within: Within) -> timedelta | None:
    """The wait in wall-clock time, or None when it is counted in working time (which may be days)."""
    if within.minutes is not None:
        return timedelta(minutes=within.minutes)
    if within.hours is not None:
        return timedelta(hours=within.hours)
    return None


def acknowledge_within(urgency: Urgency, *, policy: Policy) -> Within:
    """The policy's acknowledgement time for `urgency`, capped by the floor in wall-clock minutes."""
    key = ("acknowledge_within", urgency)
    known = policy.engine_cache.get(key)
    if known is None:
        known = policy.engine_cache[key] = _capped(urgency, policy=policy)
    return known  # type: ignore[no-any-return]


def _capped(urgency: Urgency, *, policy: Policy) -> Within:
    asked = policy.acknowledge_within[urgency]
    longest = LONGEST_WAIT.get(urgency)
    if longest is None:
        return asked
    given = clock_time(asked)
    if given is not None and given <= longest:
        return asked
    return Within(minutes=int(longest.total_seconds() // 60))


def too_slow(policy: Policy) -> list[tuple[Urgency, str]]:
    """Each acknowledgement time the policy gives that is slower than the floor, worded for `policy check`."""
    problems = []
    for urgency, longest in LONGEST_WAIT.items():
        asked = policy.acknowledge_within[urgency]
        given = clock_time(asked)
        if given is None or given > longest:
            problems.append(
                (
                    urgency,
                    f"acknowledge_within.{urgency.value}: {asked.described} is slower than the floor of "
                    f"{int(longest.total_seconds() // 60)} wall-clock minutes (the floor is used instead)",
                )
            )
    return problems
