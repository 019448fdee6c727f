"""Synthetic cases and the people who act on them, for the case workflow's tests (no real people)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.routing.case import CaseState, apply, decide, fold, parse_command
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import CaseOpened, CaseOpenedPayload, CaseTriaged, CaseTriagedPayloadV2

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROUTING = Actor(id="routing", role="service")

DSL = Actor(id="s-bird", role="designated_safeguarding_lead")
DEPUTY = Actor(id="r-crane", role="deputy_designated_safeguarding_lead")
HEAD = Actor(id="head-1", role="headteacher")
GOVERNOR = Actor(id="d-hill", role="named_governor")
TEACHER = Actor(id="teacher-1", role="staff")

CATEGORIES = {
    "concern": ("online_bullying", "online_bullying"),
    "staff_allegation": ("allegation_against_staff", "staff_online_conduct"),
    "low_level_concern": ("staff_low_level_concern", "staff_online_conduct"),
    "staff_declaration": ("staff_declaration", "pre_existing_relationship"),
}


def opening_events(
    case_type: str = "concern",
    *,
    case_id: str | None = None,
    school_id: str = "st-marks",
    parents: str = "inform",
    at: datetime = MONDAY,
    **triage: Any,
) -> list[Event[Any]]:
    """case.opened and case.triaged as routing records them, for a case of `case_type` (`triage`: more fields)."""
    category, kind = CATEGORIES[case_type]
    case_id = case_id or f"case-{uuid.uuid4().hex[:12]}"
    reference = f"SG-TEST-{uuid.uuid4().hex[:8].upper()}"
    common: dict[str, Any] = {"school_id": school_id, "aggregate_id": case_id, "actor": ROUTING, "occurred_at": at}
    opened = CaseOpened.new(
        CaseOpenedPayload(
            case_id=case_id, reference=reference, concern_event_id=str(uuid.uuid4()), kind=kind, policy_version=1
        ),
        **common,
    )
    triaged = CaseTriaged.new(
        CaseTriagedPayloadV2(
            case_id=case_id,
            reference=reference,
            category=category,
            urgency="high",
            rule_ids=["test-rule"],
            policy_version=1,
            notify_roles=["designated_safeguarding_lead"],
            recipients=[],
            # The case's own word "withhold" is what triage's "must_not_tell" becomes in the case.
            parents="must_not_tell" if parents == "withhold" else parents,  # type: ignore[arg-type]
            **{"parents_reason": "" if parents == "inform" else "telling parents may increase the risk", **triage},
        ),
        cause=opened,
        **common,
    )
    return [opened, triaged]


def a_case(case_type: str = "concern", **options: Any) -> CaseState:
    """A freshly opened and triaged case of `case_type`."""
    return fold(opening_events(case_type, **options))


def command(name: str, state: CaseState, *, by: Actor = DSL, **fields: Any) -> dict[str, Any]:
    """The JSON the console sends for `name` on `state`'s case, asked by `by`."""
    return {
        "command": name,
        "case_id": state.case_id,
        "school_id": state.school_id,
        "actor": by.model_dump(),
        **fields,
    }


Step = tuple[str, Actor, dict[str, Any]]


def step(name: str, *, by: Actor = DSL, **fields: Any) -> Step:
    """One command in a scenario: its name, who asks, and its fields."""
    return (name, by, fields)


def asked_by(actor: Actor, asked: Step) -> Step:
    """The same step, asked by someone else."""
    return (asked[0], actor, asked[2])


def run(state: CaseState, name: str, *, by: Actor = DSL, minutes: int = 1, **fields: Any) -> list[Event[Any]]:
    """What one command records on `state`'s case (raises CommandRejected when it is refused)."""
    parsed = parse_command(command(name, state, by=by, **fields))
    return decide(state, parsed, now=MONDAY + timedelta(minutes=minutes), actor=by)


def after(state: CaseState, *steps: Step) -> CaseState:
    """The case after each step is decided and its events applied, in order."""
    for minutes, (name, by, fields) in enumerate(steps, start=1):
        for event in run(state, name, by=by, minutes=minutes, **fields):
            state = apply(state, event)
    return state


# Steps that recur in the scenarios, named as a DSL would say them.
ACKNOWLEDGED = step("acknowledge")
NOT_REFERRED = step(
    "record_decision",
    kind="not_refer",
    decision="No referral to children's social care",
    reasons="Threshold not met; pastoral support in school",
)
RESOLVED = step("record_outcome", outcome="resolved_in_school", summary="Support in place; messages removed")
INVESTIGATED = step("complete_investigation", summary="Statements taken and reviewed")
CLOSED = step("close", summary="Closed after review")


def outcome(word: str) -> Step:
    return step("record_outcome", outcome=word, summary="Outcome agreed with the LADO")


def link(person_id: str, role: str, involvement: str, *, by: Actor = DSL) -> Step:
    return step("link_person", by=by, person={"person_id": person_id, "role": role, "involvement": involvement})
