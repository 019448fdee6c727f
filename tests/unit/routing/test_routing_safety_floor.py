"""The safety floor holds even when a policy file tries to break it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.routing.policy import (
    ParentDecision,
    Policy,
    SchoolRole,
    Urgency,
    decide,
    escalation_ladder,
)
from shared.contracts.concern import ConcernReceivedPayload

Build = Callable[..., Policy]
Concern = Callable[..., ConcernReceivedPayload]


def told(decision: Any) -> set[str]:
    return {r.person_id for r in decision.recipients}


def rule(rule_id: str, when: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule_id, "section": "test", "title": rule_id, "when": when, "then": then}


def test_a_rule_telling_the_headteacher_about_the_headteacher_reaches_the_named_governor_instead(
    school: Build, concern: Concern
) -> None:
    policy = school(
        [rule("tell-head", {"about": ["headteacher"]}, {"category": "misconduct", "notify": ["headteacher"]})]
    )
    decision = decide(concern(people=[{"role": "headteacher", "involvement": "alleged_perpetrator"}]), policy)
    assert "head" not in told(decision)
    assert "governor" in told(decision)
    assert SchoolRole.headteacher not in decision.notify_roles
    assert "headteacher_subject_goes_to_named_governor" in decision.safety_floor


def test_the_headteacher_is_recognised_by_person_id_whatever_role_the_report_gives(
    school: Build, concern: Concern
) -> None:
    policy = school([rule("tell-head", {"kinds": ["staff_conduct"]}, {"notify": ["headteacher", "leadership_team"]})])
    people = [{"role": "staff", "involvement": "subject", "person_id": "head"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    assert "head" not in told(decision)
    assert {"governor", "dsl"} <= told(decision)


def test_the_headteacher_is_recognised_by_name(school: Build, concern: Concern) -> None:
    policy = school(
        [rule("tell-head", {"kinds": ["staff_conduct"]}, {"category": "conduct", "notify": ["headteacher"]})]
    )
    people = [{"role": "unknown", "involvement": "alleged_perpetrator", "name": "dr h. teacher"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    assert told(decision) == {"governor"}


def test_a_concern_about_the_dsl_goes_to_the_deputies(school: Build, concern: Concern) -> None:
    policy = school([rule("tell-dsl", {"about": ["staff"]}, {"notify": ["designated_safeguarding_lead"]})])
    people = [{"role": "staff", "involvement": "subject", "person_id": "dsl"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    assert told(decision) == {"deputy-a", "deputy-b"}
    assert decision.notify_roles == (SchoolRole.deputy_designated_safeguarding_lead,)
    assert "never_notify_subject" in decision.safety_floor


def test_when_the_dsl_is_also_the_headteacher_and_the_subject_the_deputies_and_governor_take_it(
    school: Build, concern: Concern
) -> None:
    people_data = [
        {"id": "dsl-head", "name": "Ms Both", "roles": ["designated_safeguarding_lead", "headteacher"],
         "contact": {"email": "both@example.org"}},
        {"id": "deputy", "name": "Mr Deputy", "roles": ["deputy_designated_safeguarding_lead"],
         "contact": {"phone": "+44 7700 900999"}},
        {"id": "chair", "name": "Mrs Chair", "roles": ["named_governor"], "contact": {"push": True}},
    ]  # fmt: skip
    policy = school(
        [rule("tell-all", {}, {"notify": ["designated_safeguarding_lead", "headteacher"]})], people=people_data
    )
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": "dsl-head"}]
    decision = decide(concern(kind="staff_conduct", people=people, immediate_risk=True), policy)
    assert told(decision) == {"deputy", "chair"}


def test_a_rule_informing_parents_about_a_member_of_staff_is_overruled(school: Build, concern: Concern) -> None:
    policy = school([rule("tell-parents", {"about": ["staff"]}, {"parents": "inform", "notify": ["headteacher"]})])
    for role in ("staff", "volunteer", "contractor", "governor", "headteacher"):
        people = [{"role": role, "involvement": "alleged_perpetrator"}, {"role": "learner", "involvement": "victim"}]
        decision = decide(concern(kind="staff_conduct", people=people), policy)
        assert decision.parent_notification.decision is not ParentDecision.inform, role


def test_a_member_of_staff_named_only_by_id_still_counts_as_staff_for_parents(school: Build, concern: Concern) -> None:
    policy = school([rule("tell-parents", {}, {"parents": "inform"})])
    people = [{"role": "unknown", "involvement": "subject", "person_id": "pastoral"}]
    decision = decide(concern(kind="other", people=people), policy)
    assert decision.parent_notification.decision is ParentDecision.must_not_tell
    assert "pastoral" not in told(decision)


@pytest.mark.parametrize("flags", [{"telling_parents_may_increase_risk": True}, {"harm_from_parent_or_carer": True}])
def test_parents_are_not_informed_when_that_could_harm_the_child(
    school: Build, concern: Concern, flags: dict[str, bool]
) -> None:
    policy = school(
        [rule("inform", {"kinds": ["online_bullying"]}, {"parents": "inform", "notify": ["pastoral_lead"]})]
    )
    decision = decide(concern(**flags), policy)
    assert decision.parent_notification.decision is ParentDecision.must_not_tell
    assert decision.parent_notification.reason
    assert "dsl" in told(decision)


def test_a_parent_harming_a_child_is_harm_from_a_parent_even_unflagged(school: Build, concern: Concern) -> None:
    policy = school([rule("inform", {}, {"parents": "inform", "notify": ["pastoral_lead"]})])
    people = [
        {"role": "parent_carer", "involvement": "alleged_perpetrator"},
        {"role": "learner", "involvement": "victim", "age": 7},
    ]
    decision = decide(concern(people=people), policy)
    assert decision.parent_notification.decision is ParentDecision.must_not_tell
    assert "dsl" in told(decision)


def test_immediate_risk_is_immediate_and_reaches_the_dsl_and_deputies_whatever_the_rule_says(
    school: Build, concern: Concern
) -> None:
    policy = school([rule("calm", {"kinds": ["online_bullying"]}, {"urgency": "low", "notify": ["pastoral_lead"]})])
    at_risk = concern(immediate_risk=True)
    decision = decide(at_risk, policy)
    assert decision.urgency is Urgency.immediate
    assert {"dsl", "deputy-a", "deputy-b", "pastoral"} <= told(decision)
    acknowledge = next(d for d in decision.deadlines if d.kind == "acknowledge")
    assert (acknowledge.due_at - at_risk.received_at).total_seconds() == 15 * 60
    assert "immediate_risk_is_immediate_and_reaches_dsl" in decision.safety_floor


def test_a_policy_where_no_rule_matches_still_reaches_the_dsl(school: Build, concern: Concern) -> None:
    policy = school([rule("never", {"kinds": ["staff_conduct"]}, {"notify": ["headteacher"]})])
    decision = decide(concern(kind="something_unheard_of"), policy)
    assert decision.rule_ids == ()
    assert told(decision) == {"dsl"}
    assert decision.category == "triage"
    assert "unmatched_goes_to_dsl" in decision.safety_floor
    assert decision.parent_notification.decision is ParentDecision.dsl_decides


def test_a_policy_with_no_rules_at_all_still_reaches_the_dsl(school: Build, concern: Concern) -> None:
    decision = decide(concern(), school([]))
    assert told(decision) == {"dsl"}


def test_rules_that_only_add_people_or_guidance_still_leave_the_dsl_to_triage(school: Build, concern: Concern) -> None:
    policy = school([rule("guidance-only", {}, {"notify": ["pastoral_lead"], "guidance": "Be kind."})])
    decision = decide(concern(), policy)
    assert decision.rule_ids == ("guidance-only",)
    assert decision.category == "triage"
    assert told(decision) == {"dsl", "pastoral"}
    assert "unmatched_goes_to_dsl" in decision.safety_floor
    assert decision.guidance[:2] == ("Be kind.", "The DSL triages this.")


def test_a_rule_that_names_nobody_still_reaches_the_dsl(school: Build, concern: Concern) -> None:
    decision = decide(concern(), school([rule("quiet", {}, {"category": "noted", "urgency": "low"})]))
    assert told(decision) == {"dsl"}
    assert "dsl_when_no_one_else_is_named" in decision.safety_floor


def test_a_role_whose_only_holder_is_the_subject_passes_to_the_next_in_line(school: Build, concern: Concern) -> None:
    policy = school([rule("pastoral", {}, {"category": "conduct", "notify": ["pastoral_lead"]})])
    people = [{"role": "staff", "involvement": "subject", "person_id": "pastoral"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    assert told(decision) == {"dsl"}


def test_when_every_internal_person_is_a_subject_the_lado_is_told(school: Build, concern: Concern) -> None:
    ids = ["dsl", "deputy-a", "deputy-b", "head", "governor", "pastoral"]
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": pid} for pid in ids]
    decision = decide(concern(kind="staff_conduct", people=people), school([]))
    assert told(decision) == {"lado"}


def test_when_everyone_is_a_subject_nobody_is_told_and_an_error_alert_says_call_the_lado(
    school: Build, concern: Concern
) -> None:
    ids = ["dsl", "deputy-a", "deputy-b", "head", "governor", "pastoral", "lado"]
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": pid} for pid in ids]
    decision = decide(concern(kind="staff_conduct", people=people), school([]))
    assert told(decision) == set()
    [alert] = decision.alerts
    assert alert == "error: nobody the policy names can safely be told about concern SG-TEST-1: call the LADO now"


def test_the_escalation_ladder_skips_subjects_and_people_already_told(school: Build, concern: Concern) -> None:
    policy = school([rule("bullying", {}, {"notify": ["pastoral_lead", "designated_safeguarding_lead"]})])
    decision = decide(concern(), policy)
    ladder = escalation_ladder(decision, policy=policy)
    assert [(r.rung, r.role) for r in ladder] == [
        (1, SchoolRole.deputy_designated_safeguarding_lead),
        (2, SchoolRole.headteacher),
    ]
    assert {p.person_id for p in ladder[0].recipients} == {"deputy-a", "deputy-b"}


def test_the_escalation_ladder_puts_the_named_governor_in_place_of_a_headteacher_subject(
    school: Build, concern: Concern
) -> None:
    policy = school([rule("pastoral", {}, {"category": "conduct", "notify": ["pastoral_lead"]})])
    people = [{"role": "headteacher", "involvement": "subject"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    ladder = escalation_ladder(decision, policy=policy)
    roles = [r.role for r in ladder]
    assert SchoolRole.headteacher not in roles
    assert all(p.person_id != "head" for rung in ladder for p in rung.recipients)
    # The governor was told at once (headteacher as subject), so the ladder is DSL then deputies.
    assert roles == [SchoolRole.designated_safeguarding_lead, SchoolRole.deputy_designated_safeguarding_lead]


def test_the_escalation_ladder_skips_a_dsl_who_is_the_subject(school: Build, concern: Concern) -> None:
    policy = school([rule("pastoral", {}, {"category": "conduct", "notify": ["pastoral_lead"]})])
    people = [{"role": "staff", "involvement": "subject", "person_id": "dsl"}]
    decision = decide(concern(kind="staff_conduct", people=people), policy)
    ladder = escalation_ladder(decision, policy=policy)
    assert [r.role for r in ladder] == [
        SchoolRole.deputy_designated_safeguarding_lead,
        SchoolRole.headteacher,
    ]


def test_a_policy_that_lowers_an_urgent_by_nature_kind_is_overridden(school: Build, concern: Concern) -> None:
    kinds = [{"id": "sexual_images", "label": "Nude images"}, {"id": "other", "label": "Something else"}]
    calm = rule("calm", {"kinds": ["sexual_images"]}, {"category": "images", "urgency": "low"})
    decision = decide(concern(kind="sexual_images"), school([calm], kinds=kinds))
    assert decision.urgency is Urgency.high
    assert decision.safety_floor[0] == "urgent_by_nature_kind_not_lowered"


def test_a_policy_may_raise_a_kind_s_minimum_but_not_lower_the_code_s(school: Build, concern: Concern) -> None:
    kinds = [
        {"id": "sexual_images", "label": "Nude images", "min_urgency": "low"},
        {"id": "other", "label": "Something else", "min_urgency": "immediate"},
    ]
    policy = school([rule("any", {}, {"category": "x", "urgency": "low"})], kinds=kinds)
    assert decide(concern(kind="sexual_images"), policy).urgency is Urgency.high
    assert decide(concern(kind="other"), policy).urgency is Urgency.immediate


def test_not_sure_and_not_answered_are_never_read_as_no(school: Build, concern: Concern) -> None:
    policy = school([rule("no-risk", {"immediate_risk": False}, {"category": "calm", "urgency": "low"})])
    for answer in ("not_sure", "not_answered"):
        decision = decide(concern(immediate_risk=answer), policy)
        assert decision.rule_ids == ()
        assert decision.urgency is Urgency.high
        assert "Risk not yet assessed — DSL to assess now." in decision.guidance
        assert "dsl" in told(decision)
    said_no = decide(concern(immediate_risk="no"), policy)
    assert (said_no.rule_ids, said_no.urgency) == (("no-risk",), Urgency.low)
