"""The case workflow as a DSL would state it: what each command records, and what the case refuses."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from services.routing.case import CaseState, CommandRejected, StaleCommand, decide, parse_command
from tests.unit.routing_case.cases import (
    ACKNOWLEDGED,
    CLOSED,
    DEPUTY,
    DSL,
    GOVERNOR,
    HEAD,
    INVESTIGATED,
    MONDAY,
    NOT_REFERRED,
    RESOLVED,
    TEACHER,
    Step,
    a_case,
    after,
    asked_by,
    command,
    link,
    outcome,
    run,
    step,
)

DECLARATION_DECIDED = step(
    "record_decision",
    kind="staff_declaration",
    decision="Contact may continue through official school channels only",
    reasons="Long-standing family friendship predating employment",
    advice="Do not message the learner on personal accounts; tell the DSL of any contact",
)
LADO_REFERRAL = step(
    "record_decision", kind="refer", agency="lado", decision="Refer to the LADO", reasons="Harm threshold met"
)
REOPENED = step("reopen", reason="A new disclosure")


class Scenario(NamedTuple):
    """Given a case of `case` type (parents as triage decided) and the `given` steps, `when` is asked."""

    name: str
    when: Step
    then: str | list[str]
    case: str = "concern"
    given: tuple[Step, ...] = ()
    parents: str = "inform"


REFUSED = [
    Scenario(
        "close before an outcome is refused", given=(ACKNOWLEDGED, NOT_REFERRED), when=CLOSED, then="record an outcome"
    ),
    Scenario(
        "close without recording whether to refer is refused",
        given=(RESOLVED,),
        when=CLOSED,
        then="decision whether to refer",
    ),
    Scenario(
        "an allegation outcome must be one of the five",
        case="staff_allegation",
        when=outcome("resolved"),
        then="none of these",
    ),
    Scenario(
        "an allegation reclassified from low-level closes only on one of the five",
        case="low_level_concern",
        given=(outcome("words_of_advice"), step("reclassify", case_type="staff_allegation", reason="A pattern")),
        when=CLOSED,
        then="none of these",
    ),
    Scenario(
        "a staff declaration cannot close before its decision is recorded",
        case="staff_declaration",
        given=(outcome("advice_given"),),
        when=CLOSED,
        then="formally recorded",
    ),
    Scenario(
        "a staff declaration decision records the advice given",
        case="staff_declaration",
        when=step("record_decision", kind="staff_declaration", decision="Contact may continue", reasons="Friends"),
        then="advice",
    ),
    Scenario(
        "a deputy does not decide a staff declaration",
        case="staff_declaration",
        when=asked_by(DEPUTY, DECLARATION_DECIDED),
        then="only the DSL or the headteacher",
    ),
    Scenario("reopen is only for a closed case", when=REOPENED, then="only a closed case"),
    Scenario(
        "a class teacher cannot close a case",
        given=(RESOLVED, NOT_REFERRED),
        when=asked_by(TEACHER, CLOSED),
        then="only the DSL, a deputy DSL or the headteacher may close",
    ),
    Scenario(
        "withholding from parents is for the DSL or a deputy",
        when=step("decide_parent_notification", by=HEAD, decision="withhold", reason="Risk at home"),
        then="only the DSL or a deputy DSL may decide",
    ),
    Scenario(
        "linking a witness never makes them the subject",
        given=(link("learner-b", "learner", "witness"),),
        when=link("learner-b", "learner", "subject"),
        then="already linked as learner witness",
    ),
    Scenario(
        "a victim is never given another learner's role",
        given=(link("learner-a", "learner", "victim"), link("learner-b", "learner", "alleged_perpetrator")),
        when=link("learner-a", "learner", "alleged_perpetrator"),
        then="never changes a person's part",
    ),
    Scenario(
        "parents are not contacted while the decision is to withhold",
        parents="withhold",
        when=step("record_action", action="parents_contacted"),
        then="DSL must override",
    ),
    Scenario(
        "a low-level concern is not referred to the LADO",
        case="low_level_concern",
        when=step("record_action", action="lado_referral"),
        then="reclassify it first",
    ),
    Scenario("a LADO referral decision needs an allegation", when=LADO_REFERRAL, then="LADO referral is for an"),
    Scenario(
        "a referral names the agency",
        when=step("record_decision", kind="refer", decision="Refer", reasons="Significant harm"),
        then="names the agency",
    ),
    Scenario(
        "a sanction is not for a staff matter",
        case="staff_allegation",
        when=step("record_action", action="sanction"),
        then="sanction is for a learner",
    ),
    Scenario(
        "a closed case records no more actions",
        given=(RESOLVED, NOT_REFERRED, CLOSED),
        when=step("record_action", action="pastoral_support"),
        then="closed: reopen it first",
    ),
    Scenario(
        "a closed case cannot be closed again",
        given=(RESOLVED, NOT_REFERRED, CLOSED),
        when=CLOSED,
        then="closed: reopen it first",
    ),
    Scenario(
        "a debrief follows a completed investigation",
        when=step("request_debrief", focus="Lessons on reporting"),
        then="complete the investigation first",
    ),
    Scenario("an investigation completes once", given=(INVESTIGATED,), when=INVESTIGATED, then="already recorded"),
    Scenario(
        "the person an allegation is about cannot act on it",
        case="staff_allegation",
        given=(link("head-1", "headteacher", "alleged_perpetrator"),),
        when=asked_by(HEAD, CLOSED),
        then="named in this case as alleged_perpetrator",
    ),
    Scenario(
        "a case is never handed to the person it is about",
        case="staff_allegation",
        given=(link("teacher-9", "staff", "alleged_perpetrator"),),
        when=step("reassign", to={"person_id": "teacher-9", "role": "staff"}),
        then="cannot lead it",
    ),
    Scenario(
        "an action about someone not linked is refused",
        when=step("record_action", action="spoke_to_learner", person_id="learner-z"),
        then="link them first",
    ),
    Scenario(
        "a case is not reclassified as what it already is",
        when=step("reclassify", case_type="concern", reason="No change"),
        then="already a concern",
    ),
]


def _given(scenario: Scenario) -> CaseState:
    return after(a_case(scenario.case, parents=scenario.parents), *scenario.given)


@pytest.mark.parametrize("scenario", REFUSED, ids=[s.name for s in REFUSED])
def test_the_case_refuses(scenario: Scenario) -> None:
    name, by, fields = scenario.when
    with pytest.raises(CommandRejected) as refused:
        run(_given(scenario), name, by=by, **fields)
    assert str(scenario.then) in refused.value.reason


RECORDED = [
    Scenario("acknowledging a case records who took it on", when=ACKNOWLEDGED, then=["case.acknowledged"]),
    Scenario("acknowledge twice is one event", given=(ACKNOWLEDGED,), when=ACKNOWLEDGED, then=[]),
    Scenario(
        "a second person acknowledging changes nothing",
        given=(ACKNOWLEDGED,),
        when=asked_by(DEPUTY, ACKNOWLEDGED),
        then=[],
    ),
    Scenario(
        "linking the same person the same way again changes nothing",
        given=(link("learner-b", "learner", "witness"),),
        when=link("learner-b", "learner", "witness"),
        then=[],
    ),
    Scenario(
        "a member of staff linked as alleged perpetrator makes a concern an allegation",
        when=link("teacher-9", "staff", "alleged_perpetrator"),
        then=["case.person_linked", "case.reclassified"],
    ),
    Scenario(
        "a member of staff linked as witness leaves a concern a concern",
        when=link("teacher-9", "staff", "witness"),
        then=["case.person_linked"],
    ),
    Scenario(
        "a decision not to refer is recorded with its reasons", when=NOT_REFERRED, then=["case.decision_recorded"]
    ),
    Scenario(
        "close after an outcome and a referral decision",
        given=(RESOLVED, NOT_REFERRED),
        when=CLOSED,
        then=["case.closed"],
    ),
    Scenario(
        "a low-level concern closes on its outcome",
        case="low_level_concern",
        given=(outcome("addressed_through_supervision"),),
        when=CLOSED,
        then=["case.closed"],
    ),
    Scenario(
        "a staff declaration closes on its formal decision",
        case="staff_declaration",
        given=(DECLARATION_DECIDED,),
        when=asked_by(HEAD, CLOSED),
        then=["case.closed"],
    ),
    Scenario(
        "an allegation closes on one of the five outcomes",
        case="staff_allegation",
        given=(LADO_REFERRAL, outcome("unsubstantiated")),
        when=CLOSED,
        then=["case.closed"],
    ),
    Scenario(
        "the named governor may close an allegation about the headteacher",
        case="staff_allegation",
        given=(link("head-1", "headteacher", "alleged_perpetrator"), LADO_REFERRAL, outcome("unfounded")),
        when=asked_by(GOVERNOR, CLOSED),
        then=["case.closed"],
    ),
    Scenario(
        "a closed case may be reopened with a reason",
        given=(RESOLVED, NOT_REFERRED, CLOSED),
        when=REOPENED,
        then=["case.reopened"],
    ),
    Scenario(
        "a debrief may be requested after the case closes",
        given=(INVESTIGATED, RESOLVED, NOT_REFERRED, CLOSED),
        when=step("request_debrief", focus="Reporting routes"),
        then=["case.debrief_requested"],
    ),
    Scenario(
        "a concern about staff below the harm threshold becomes a low-level concern",
        case="staff_allegation",
        when=step("reclassify", case_type="low_level_concern", reason="Below the harm threshold after LADO advice"),
        then=["case.reclassified"],
    ),
    Scenario(
        "any member of staff may record a referral to children's social care",
        when=step("record_action", by=TEACHER, action="referral_to_childrens_social_care", details="Front door"),
        then=["case.action_recorded"],
    ),
    Scenario(
        "the DSL reassigns the case to a deputy",
        given=(ACKNOWLEDGED,),
        when=step("reassign", to={"person_id": "r-crane", "role": "deputy_designated_safeguarding_lead"}),
        then=["case.reassigned"],
    ),
]


@pytest.mark.parametrize("scenario", RECORDED, ids=[s.name for s in RECORDED])
def test_the_case_records(scenario: Scenario) -> None:
    state = _given(scenario)
    name, by, fields = scenario.when
    events = run(state, name, by=by, **fields)
    assert [event.type for event in events] == scenario.then
    for event in events:
        assert (event.aggregate_id, event.school_id, event.actor) == (state.case_id, "st-marks", by)
        assert event.correlation_id == state.correlation_id and event.causation_id is None


# (scenario, triage's decision, the DSL's decision) -> recorded as an override?
PARENTS: list[tuple[str, str, str, bool]] = [
    ("withholding what triage said to tell is an override", "inform", "withhold", True),
    ("telling parents triage withheld from is an override", "withhold", "inform", True),
    ("confirming triage's withholding with the DSL's own reason is not an override", "withhold", "withhold", False),
]


@pytest.mark.parametrize(("triage", "decision", "overridden"), [r[1:] for r in PARENTS], ids=[r[0] for r in PARENTS])
def test_parent_notification_is_decided_with_a_reason(triage: str, decision: str, overridden: bool) -> None:
    state = a_case(parents=triage)
    [event] = run(state, "decide_parent_notification", by=DEPUTY, decision=decision, reason="Spoke to the learner")
    assert event.type == "case.parent_notification_decided"
    payload: Any = event.payload
    assert (payload.previous, payload.decision, payload.overridden) == (triage, decision, overridden)
    assert payload.reason == "Spoke to the learner"


def test_a_linked_person_carries_exactly_the_involvement_given() -> None:
    state = after(a_case(), link("learner-a", "learner", "victim"))
    [event] = run(state, "link_person", person={"person_id": "learner-b", "role": "learner", "involvement": "witness"})
    payload: Any = event.payload
    assert (payload.person_id, payload.role, payload.involvement) == ("learner-b", "learner", "witness")
    state = after(state, link("learner-b", "learner", "witness"))
    assert [(p.person_id, p.involvement) for p in state.people] == [("learner-a", "victim"), ("learner-b", "witness")]


def test_a_command_on_an_older_version_is_refused_as_stale() -> None:
    state = after(a_case(), ACKNOWLEDGED)
    with pytest.raises(StaleCommand, match="moved on"):
        run(state, "record_action", action="pastoral_support", expected_version=2)
    assert run(state, "record_action", action="pastoral_support", expected_version=3)


def test_another_schools_case_is_not_found() -> None:
    state = a_case(school_id="st-johns")
    asked_at_st_marks = {**command("acknowledge", state), "school_id": "st-marks"}
    with pytest.raises(CommandRejected, match="no case"):
        decide(state, parse_command(asked_at_st_marks), now=MONDAY, actor=DSL)
