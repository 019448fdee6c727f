"""Properties of `decide` for any concern at all: someone is always told, and never the person it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.routing.policy import (
    ParentDecision,
    Policy,
    SchoolRole,
    Urgency,
    decide,
    load_policy,
    policy_from_data,
)
from shared.contracts.concern import (
    ADULTS_WORKING_WITH_CHILDREN,
    ConcernReceivedPayload,
    Involvement,
    PersonRole,
    RiskAnswer,
)

REPO = Path(__file__).resolve().parents[3]
ST_MARKS = load_policy(REPO / "deploy" / "policies" / "st-marks.yaml")


def _hostile() -> Policy:
    """St Mark's people under rules that try every trick the safety floor must resist."""
    data = ST_MARKS.model_dump(mode="json")
    everyone = [role.value for role in SchoolRole]
    data["rules"] = [
        {"id": "tell-everyone", "section": "x", "title": "x", "when": {},
         "then": {"category": "anything", "urgency": "low", "notify": everyone, "parents": "inform"}},
        {"id": "calm-risk", "section": "x", "title": "x", "when": {"immediate_risk": True},
         "then": {"urgency": "low", "notify": ["pastoral_lead"], "parents": "inform"}},
        {"id": "head-about-head", "section": "x", "title": "x", "when": {"about": ["headteacher"]},
         "then": {"notify": ["headteacher"], "parents": "inform"}},
    ]  # fmt: skip
    return policy_from_data(data)


def _silent() -> Policy:
    """A policy whose only rule can never apply to a real concern."""
    data = ST_MARKS.model_dump(mode="json")
    data["rules"] = [
        {"id": "nothing", "section": "x", "title": "x", "when": {"kinds": ["not_sure"], "subject_age": {"under": 0}},
         "then": {"notify": ["headteacher"]}}
    ]  # fmt: skip
    return policy_from_data(data)


POLICIES = {"st-marks": ST_MARKS, "hostile": _hostile(), "silent": _silent()}
PEOPLE = [(p.id, p.name) for p in ST_MARKS.people]


@st.composite
def person_in_concern(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(st.sampled_from(list(PersonRole)))
    person: dict[str, Any] = {"role": role.value, "involvement": draw(st.sampled_from(list(Involvement))).value}
    known = draw(st.none() | st.sampled_from(PEOPLE))
    if known is not None:
        person_id, name = known
        how = draw(st.sampled_from(["id", "name", "shouted", "dotted", "both"]))
        if how in ("id", "both"):
            person["person_id"] = person_id
        if how in ("name", "both"):
            person["name"] = name
        if how == "shouted":
            person["name"] = name.upper()
        if how == "dotted":
            person["name"] = "  " + name.replace(" ", ". ")
    else:
        person["person_id"] = draw(st.none() | st.sampled_from(["p-1", "p-2", "learner-77"]))
    person["age"] = draw(st.none() | st.integers(min_value=0, max_value=130))
    return person


@st.composite
def concerns(draw: st.DrawFn) -> ConcernReceivedPayload:
    if draw(st.booleans()):
        reporter: dict[str, Any] = {"anonymous": True}
    else:
        reporter = {"role": draw(st.sampled_from(list(PersonRole))).value}
        reporter["person_id"] = draw(st.none() | st.sampled_from([pid for pid, _ in PEOPLE]))
    reporter["age"] = draw(st.none() | st.integers(min_value=4, max_value=90))
    kinds = [k.id for k in ST_MARKS.kinds] + ["something_new"]
    return ConcernReceivedPayload.model_validate(
        {
            "reporter": reporter,
            "people": draw(st.lists(person_in_concern(), min_size=1, max_size=6)),
            "kind": draw(st.sampled_from(kinds)),
            "summary": "generated",
            "platform": draw(st.none() | st.sampled_from(["TikTok", "tik tok", "Roblox", "MySpace", "x"])),
            "in_school_hours": draw(st.none() | st.booleans()),
            "on_school_device": draw(st.none() | st.booleans()),
            "immediate_risk": draw(st.sampled_from([*RiskAnswer, True, False])),
            "telling_parents_may_increase_risk": draw(st.booleans()),
            "harm_from_parent_or_carer": draw(st.booleans()),
            "reference": "SG-PROP",
            "channel": "json_api",
            "raw_input_id": "raw",
            "received_at": draw(
                st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
            ),
        }
    )


def subjects_by_hand(concern: ConcernReceivedPayload, policy: Policy) -> set[str]:
    """Who the concern is about, worked out independently of the engine from how the test built it."""
    by_name = {name.casefold(): pid for pid, name in PEOPLE}
    about: set[str] = set()
    for person in concern.subjects():
        if person.person_id:
            about.add(person.person_id)
        if person.name:
            about.add(by_name.get(" ".join(person.name.replace(".", "").split()).casefold(), "?"))
        if person.role is PersonRole.headteacher:
            about.update(p.id for p in policy.holders(SchoolRole.headteacher))
    return about


def holders(policy: Policy, role: SchoolRole) -> set[str]:
    return {p.id for p in policy.holders(role)}


@pytest.mark.parametrize("name", list(POLICIES))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(concern=concerns())
def test_someone_is_told_and_never_a_subject(name: str, concern: ConcernReceivedPayload) -> None:
    policy = POLICIES[name]
    about = subjects_by_hand(concern, policy)
    decision = decide(concern, policy)
    told = {r.person_id for r in decision.recipients}
    excluded = about | decision.excluded_person_ids
    if not told:
        # Only when everyone the policy names is, or may be, a subject: and then an alert says so.
        assert {p.id for p in policy.people} <= excluded
        assert any("call the LADO now" in alert for alert in decision.alerts)
        return
    assert not told & about, f"told a subject: {told & about}"
    assert not told & decision.excluded_person_ids
    if not any(not p.external for p in policy.people if p.id in told):
        assert any(alert.startswith("error: nobody inside the school") for alert in decision.alerts)

    # A self-report also makes the reporter a subject, so who must be told is everyone else in the role.
    if concern.immediate_risk is not RiskAnswer.no:
        # Only "no" is no: "not sure" and "not answered" are at least high, and the DSL assesses now.
        assert decision.urgency.rank >= Urgency.high.rank
        assert holders(policy, SchoolRole.designated_safeguarding_lead) - excluded <= told
    if concern.immediate_risk is RiskAnswer.yes:
        assert decision.urgency is Urgency.immediate
        for role in (SchoolRole.designated_safeguarding_lead, SchoolRole.deputy_designated_safeguarding_lead):
            assert holders(policy, role) - excluded <= told
    if holders(policy, SchoolRole.headteacher) & about:
        assert not told & holders(policy, SchoolRole.headteacher)
        assert holders(policy, SchoolRole.named_governor) - excluded <= told
    if not decision.rule_ids:
        assert holders(policy, SchoolRole.designated_safeguarding_lead) - excluded <= told

    internal_adult = any(not p.external for p in policy.people if p.id in about)
    adult_subject = internal_adult or any(p.role in ADULTS_WORKING_WITH_CHILDREN for p in concern.subjects())
    if adult_subject or concern.telling_parents_may_increase_risk or concern.harm_from_parent_or_carer:
        assert decision.parent_notification.decision is not ParentDecision.inform
    if concern.telling_parents_may_increase_risk or concern.harm_from_parent_or_carer:
        assert decision.parent_notification.decision is ParentDecision.must_not_tell


@settings(max_examples=100, deadline=None)
@given(concern=concerns())
def test_a_decision_is_a_pure_function_of_the_concern_and_policy(concern: ConcernReceivedPayload) -> None:
    first = decide(concern, ST_MARKS)
    assert first == decide(concern, ST_MARKS)
    assert first.policy_version == ST_MARKS.version
    assert first.policy_digest == ST_MARKS.digest
    assert all(d.due_at >= concern.received_at for d in first.deadlines)
