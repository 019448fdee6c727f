"""Debriefs (policy section 7): recorded on a completed investigation, actions owned until done, changes linked."""

from __future__ import annotations

import pytest

from services.routing.case import CommandRejected, apply
from shared.contracts.case_events import CaseDebriefRecorded
from shared.contracts.envelope import Actor
from tests.unit.routing_case.cases import (
    CLOSED,
    INVESTIGATED,
    NOT_REFERRED,
    RESOLVED,
    TEACHER,
    a_case,
    after,
    run,
    step,
)

DEBRIEF = step(
    "record_debrief",
    lessons_learnt="Reports through the form reached the DSL within minutes; tutors did not know the route",
    policy_changes=["Name the deputy DSL as the out-of-hours contact"],
    curriculum_changes=["Year 9 PSHE: anonymous accounts and image sharing"],
    actions=[
        {"action_id": "brief-tutors", "description": "Brief tutors", "owner": "r-crane", "due_on": "2026-04-01"},
        {"action_id": "update-pshe", "description": "Update the PSHE unit", "owner": "head-1", "due_on": "2026-05-01"},
    ],
)


def closed_case():  # type: ignore[no-untyped-def]
    return after(a_case(), NOT_REFERRED, RESOLVED, INVESTIGATED, CLOSED)


def test_a_debrief_on_a_closed_investigation_records_its_lessons_changes_and_actions() -> None:
    state = closed_case()
    (event,) = run(state, "record_debrief", **DEBRIEF[2])
    assert isinstance(event, CaseDebriefRecorded)
    assert event.payload.lessons_learnt.startswith("Reports through the form")
    assert [a.owner for a in event.payload.actions] == ["r-crane", "head-1"]
    assert event.payload.curriculum_changes == ["Year 9 PSHE: anonymous accounts and image sharing"]
    after_debrief = apply(state, event)
    assert after_debrief.debriefed
    assert [(a.action_id, a.owner, a.due_on.isoformat()) for a in after_debrief.open_debrief_actions] == [
        ("brief-tutors", "r-crane", "2026-04-01"),
        ("update-pshe", "head-1", "2026-05-01"),
    ]


def test_a_policy_change_links_to_the_policy_version_that_decided_the_case() -> None:
    state = closed_case()
    (event,) = run(state, "record_debrief", **DEBRIEF[2])
    assert [(c.change, c.policy_version) for c in event.payload.policy_changes] == [
        ("Name the deputy DSL as the out-of-hours contact", state.policy_version)
    ]


def test_an_action_stays_open_until_it_is_marked_done() -> None:
    state = after(closed_case(), DEBRIEF)
    done = after(state, step("complete_debrief_action", action_id="brief-tutors", note="Done at the staff meeting"))
    assert [a.action_id for a in done.open_debrief_actions] == ["update-pshe"]
    with pytest.raises(CommandRejected, match="no open debrief action brief-tutors"):
        run(done, "complete_debrief_action", action_id="brief-tutors")


@pytest.mark.parametrize(
    ("state", "by", "refusal"),
    [
        (after(a_case(), NOT_REFERRED), None, "complete the investigation first"),
        (after(a_case(), NOT_REFERRED, RESOLVED, INVESTIGATED), TEACHER, "may record a debrief"),
    ],
    ids=["before the investigation is complete", "by someone who does not manage the case"],
)
def test_a_debrief_is_refused(state, by, refusal) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandRejected, match=refusal):
        run(state, "record_debrief", **({"by": by} if by else {}), **DEBRIEF[2])


def test_the_owner_may_mark_their_action_done_though_they_do_not_manage_the_case() -> None:
    state = after(closed_case(), DEBRIEF)
    owner = Actor(id="r-crane", role="staff")
    (event,) = run(state, "complete_debrief_action", by=owner, action_id="brief-tutors")
    assert event.payload.action_id == "brief-tutors" and event.actor == owner


def test_someone_else_who_does_not_manage_the_case_may_not_mark_an_action_done() -> None:
    state = after(closed_case(), DEBRIEF)
    with pytest.raises(CommandRejected, match="only the action's owner or the DSL"):
        run(state, "complete_debrief_action", by=TEACHER, action_id="brief-tutors")
