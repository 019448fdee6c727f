"""What the case remembers from its events, and what a command must carry to be heard at all."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.routing.case import CommandRejected, apply, fold, parse_command
from services.routing.case.commands import describe_invalid
from services.routing.case.state import case_type_of
from shared.contracts.case_events import CasePersonLinked, CasePersonLinkedPayload
from shared.contracts.envelope import Event
from shared.contracts.events import NotificationRequested, NotificationRequestedPayloadV2, PersonRef
from tests.unit.routing_case.cases import (
    ACKNOWLEDGED,
    CLOSED,
    DEPUTY,
    DSL,
    HEAD,
    INVESTIGATED,
    MONDAY,
    NOT_REFERRED,
    RESOLVED,
    a_case,
    after,
    command,
    link,
    opening_events,
    run,
    step,
)

# (triage category, concern kind) -> the kind of case it is
CASE_TYPES = [
    ("online_bullying", "online_bullying", "concern"),
    ("allegation_against_staff", "staff_online_conduct", "staff_allegation"),
    ("staff_low_level_concern", "staff_online_conduct", "low_level_concern"),
    ("low_level_allegation", "staff_online_conduct", "low_level_concern"),
    ("staff_declaration", "staff_online_conduct", "staff_declaration"),
    ("dsl_triage", "pre_existing_relationship", "staff_declaration"),
    ("dsl_triage", "allegation_about_staff", "staff_allegation"),
    ("staff_low_level_concern", "allegation_about_staff", "low_level_concern"),
]


@pytest.mark.parametrize(("category", "kind", "case_type"), CASE_TYPES, ids=[f"{c} / {k}" for c, k, _ in CASE_TYPES])
def test_the_case_type_comes_from_triage_then_the_kind(category: str, kind: str, case_type: str) -> None:
    assert case_type_of(category, kind) == case_type


def test_opening_and_triage_set_up_the_case() -> None:
    state = a_case("staff_allegation", parents="withhold")
    assert (state.version, state.status, state.case_type) == (2, "open", "staff_allegation")
    assert (state.parents, state.urgency, state.policy_version, state.opened_at) == ("withhold", "high", 1, MONDAY)


def test_events_the_workflow_does_not_track_still_count_towards_the_version() -> None:
    opened, triaged = opening_events()
    other = NotificationRequested.new(
        NotificationRequestedPayloadV2(
            notification_id="n-1",
            case_id=opened.aggregate_id,
            reference="SG-TEST-1",
            recipient=PersonRef(person_id="s-bird", name="DSL", role="designated_safeguarding_lead"),
            channel="log",
            address="-",
            urgency="high",
            reason="test",
        ),
        school_id="st-marks",
        aggregate_id=opened.aggregate_id,
        actor=opened.actor,
        occurred_at=MONDAY,
    )
    assert fold([opened, triaged, other]).version == 3


def test_a_replayed_link_never_changes_a_persons_involvement() -> None:
    state = after(a_case(), link("learner-b", "learner", "witness"))
    relinked: Event = CasePersonLinked.new(
        CasePersonLinkedPayload(case_id=state.case_id, person_id="learner-b", role="learner", involvement="subject"),
        school_id="st-marks",
        aggregate_id=state.case_id,
        actor=DSL,
        occurred_at=MONDAY,
    )
    state = apply(state, relinked)
    assert [(p.person_id, p.involvement) for p in state.people] == [("learner-b", "witness")]


def test_a_case_from_acknowledgement_to_reopening() -> None:
    state = after(a_case(), ACKNOWLEDGED)
    assert (state.status, state.acknowledged_by, state.assigned_to) == ("in_progress", "s-bird", "s-bird")
    state = after(state, INVESTIGATED, RESOLVED, NOT_REFERRED, CLOSED)
    assert (state.status, state.outcome, state.investigation_completed) == ("closed", "resolved_in_school", True)
    state = after(state, step("reopen", by=HEAD, reason="A new disclosure"))
    assert (state.status, state.outcome, state.times_reopened) == ("in_progress", None, 1)
    assert state.version == 8


def test_a_reopened_case_needs_a_fresh_outcome_before_it_closes_again() -> None:
    state = after(a_case(), RESOLVED, NOT_REFERRED, CLOSED, step("reopen", reason="A new disclosure"))
    with pytest.raises(CommandRejected, match="record an outcome"):
        run(state, "close", by=DEPUTY, summary="Closed again")


# (scenario, what the console sent) -> the field the error names
MALFORMED = [
    ("withhold parents needs a reason", {"command": "decide_parent_notification", "decision": "withhold"}, "reason"),
    (
        "a blank reason is no reason",
        {"command": "decide_parent_notification", "decision": "withhold", "reason": " "},
        "reason",
    ),
    ("an unknown action", {"command": "record_action", "action": "detention"}, "action"),
    (
        "an unknown involvement",
        {"command": "link_person", "person": {"person_id": "p", "role": "learner", "involvement": "bystander"}},
        "person.involvement",
    ),
    ("an unknown command", {"command": "delete"}, "command"),
    ("no command at all", {}, "command"),
    ("a close without a summary", {"command": "close"}, "summary"),
]


@pytest.mark.parametrize(("document", "field"), [r[1:] for r in MALFORMED], ids=[r[0] for r in MALFORMED])
def test_a_malformed_command_names_its_field(document: dict, field: str) -> None:
    state = a_case()
    base = {k: v for k, v in command("acknowledge", state).items() if k != "command"}
    with pytest.raises(ValidationError) as invalid:
        parse_command({**base, **document})
    assert describe_invalid(invalid.value).startswith(f"invalid command: {field}: ")
