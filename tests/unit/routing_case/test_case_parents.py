"""Messaging parents, as a DSL would state the rule: only on `inform`, never about staff, never when it could harm.

Each refusal is a row: the case as triage left it (and what happened since), who asks, and the word the refusal
is recorded under. The message itself is checked in tests/unit/test_notification_templates.py and, end to end,
in tests/integration/test_parents_informed.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
from pydantic import ValidationError

from services.notifications.domain import render
from services.routing.case import CaseState, CommandRejected, apply, decide, parse_command
from services.routing.parent_messages import PARENTS_INFORMED, parent_requests
from services.routing.policy import floor
from shared.contracts.case_events import CaseParentsInformed
from shared.contracts.events import PossibleSubjectRef
from shared.contracts.parent_message import ParentMessage
from tests.unit.routing_case.cases import (
    CLOSED,
    DEPUTY,
    DSL,
    HEAD,
    MONDAY,
    NOT_REFERRED,
    RESOLVED,
    TEACHER,
    Step,
    a_case,
    after,
    command,
    link,
    step,
)

WORDS = ParentMessage(
    school_name="Test Primary School",
    contact="Please call the school office on 01632 960000",
    email_subject="A message from {school_name}",
    email_body="{school_name} would like to speak with you. {contact} and quote reference {reference}.",
    sms="{school_name} would like to speak with you. {contact}, ref {reference}",
    push_title="A message from {school_name}",
    push_body="The school would like to speak with you. {contact}, ref {reference}",
)
MOTHER: dict[str, Any] = {
    "name": "Pat Example",
    "relationship": "mother",
    "channel": "email",
    "address": "pat@example.org",
}
DECIDED_TO_INFORM = step("decide_parent_notification", decision="inform", reason="Agreed with the learner today")
DECIDED_TO_WITHHOLD = step("decide_parent_notification", decision="withhold", reason="Wait for the strategy meeting")


def asked(state: CaseState, *, by: Any = DSL, **fields: Any) -> dict[str, Any]:
    """The inform_parents command as the console sends it (the mother's details unless `fields` say otherwise)."""
    return {**command("inform_parents", state, by=by), **MOTHER, **fields}


def inform(state: CaseState, *, by: Any = DSL, words: ParentMessage | None = WORDS, **fields: Any) -> list[Any]:
    """What asking to send the school's message records (CommandRejected when it must not go)."""
    parsed = parse_command(asked(state, by=by, **fields))
    return decide(state, parsed, now=MONDAY, actor=by, parent_message=words)


class Refusal(NamedTuple):
    """Given a case of `case` type, triaged with `parents` (and `triage`), after `given`: refused as `code`."""

    name: str
    code: str
    case: str = "concern"
    parents: str = "inform"
    triage: Mapping[str, Any] = MappingProxyType({})
    given: tuple[Step, ...] = ()
    by: Any = DSL
    words: ParentMessage | None = WORDS


RISK = {"parents_reason": "The reporter says telling the parents could make things worse"}
REFUSALS = [
    Refusal("the headteacher does not message parents: the DSL or a deputy does", "not_allowed", by=HEAD),
    Refusal("a member of staff cannot message parents", "not_allowed", by=TEACHER),
    Refusal("an allegation about staff: never, whatever triage said", "about_staff", case="staff_allegation"),
    Refusal(
        "an allegation about staff: never, even after the DSL decides to inform",
        "about_staff",
        case="staff_allegation",
        parents="must_not_tell",
        given=(DECIDED_TO_INFORM,),
    ),
    Refusal("a low-level concern about staff: never", "about_staff", case="low_level_concern"),
    Refusal("a staff declaration: never", "about_staff", case="staff_declaration"),
    Refusal(
        "a concern triage found is about one of the school's adults",
        "about_staff",
        triage={"subject_person_ids": ["teacher-9"]},
    ),
    Refusal(
        "a concern that may be about one of the school's adults (subject to confirm)",
        "about_staff",
        triage={"possible_subjects": [PossibleSubjectRef(person_id="teacher-9", name="T Nine", why="named")]},
    ),
    Refusal(
        "a member of staff linked as alleged perpetrator after triage",
        "about_staff",
        given=(link("staff-7", "staff", "alleged_perpetrator"),),
    ),
    Refusal(
        "the report says telling the parents could put the child at risk, even after a DSL override",
        "child_at_risk",
        parents="must_not_tell",
        triage={**RISK, "safety_floor": [floor.PARENTS_RISK]},
        given=(DECIDED_TO_INFORM,),
    ),
    Refusal(
        "the harm may come from a parent or carer, even after a DSL override",
        "child_at_risk",
        parents="must_not_tell",
        triage={**RISK, "safety_floor": [floor.PARENTS_HARM]},
        given=(DECIDED_TO_INFORM,),
    ),
    Refusal(
        "a parent or carer linked as alleged perpetrator after triage",
        "child_at_risk",
        given=(link("carer-1", "parent_carer", "alleged_perpetrator"),),
    ),
    Refusal(
        "triage said the system must not tell them; the DSL's override lets them tell the family in person only",
        "must_not_tell",
        parents="must_not_tell",
        given=(DECIDED_TO_INFORM,),
    ),
    Refusal("triage left it to the DSL, who has not decided", "parents_not_informed", parents="dsl_decides"),
    Refusal("telling parents does not apply", "parents_not_informed", parents="not_applicable"),
    Refusal("the DSL decided not to inform them", "parents_not_informed", given=(DECIDED_TO_WITHHOLD,)),
    Refusal("the policy has no words for parents", "no_parent_message", words=None),
    Refusal("the case is closed", "refused", given=(step("acknowledge"), NOT_REFERRED, RESOLVED, CLOSED)),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_the_message_is_refused_with_a_reason_that_names_nobody(refusal: Refusal) -> None:
    state = after(a_case(refusal.case, parents=refusal.parents, **refusal.triage), *refusal.given)
    with pytest.raises(CommandRejected) as refused:
        inform(state, by=refusal.by, words=refusal.words)
    assert refused.value.code == refusal.code
    for personal in ("Pat", "Example", "pat@example.org", "mother"):  # the refusal goes into the ledger unsealed
        assert personal not in refused.value.reason


ALLOWED = [
    ("triage said inform", "inform", ()),
    ("triage left it to the DSL, who decided to inform", "dsl_decides", (DECIDED_TO_INFORM,)),
    ("triage said not applicable; the DSL decided to inform", "not_applicable", (DECIDED_TO_INFORM,)),
]


@pytest.mark.parametrize(("parents", "given"), [a[1:] for a in ALLOWED], ids=[a[0] for a in ALLOWED])
def test_on_inform_the_dsl_has_the_schools_words_sent(parents: str, given: tuple[Step, ...]) -> None:
    state = after(a_case(parents=parents), *given)
    [event] = inform(state, by=DEPUTY, address=" Pat@Example.ORG ")
    assert isinstance(event, CaseParentsInformed)
    body = event.payload
    assert (body.name, body.relationship, body.channel, body.address) == (
        "Pat Example",
        "mother",
        "email",
        "Pat@example.org",
    )
    assert body.words == WORDS and body.policy_version == state.policy_version
    assert body.basis == state.parents_reason
    assert body.parent_id.startswith("parent-") and "pat" not in body.parent_id.lower()


def test_one_message_per_parent_and_address_a_second_parent_gets_their_own() -> None:
    state = a_case()
    first = inform(state)
    state = apply(state, first[0])
    with pytest.raises(CommandRejected) as again:
        inform(state, address="PAT@example.org")  # the same address, as the DSL might type it again
    assert again.value.code == "already_informed"
    [second] = inform(state, name="Sam Example", relationship="father", channel="sms", address="+44 7700 900123")
    assert second.payload.address == "+447700900123"
    assert second.payload.parent_id != first[0].payload.parent_id
    assert second.payload.notification_id != first[0].payload.notification_id
    assert [p.relationship for p in apply(state, second).parents_informed] == ["mother", "father"]


def test_the_request_to_a_parent_carries_the_words_and_the_reference_only_no_link_no_rung() -> None:
    state = a_case()
    recorded = inform(state)
    [request] = parent_requests(recorded, state=state)
    body = request.payload
    assert (body.recipient.role, body.recipient.person_id) == ("parent_carer", recorded[0].payload.parent_id)
    assert (body.channel, body.address, body.escalation_rung, body.reason) == (
        "email",
        "pat@example.org",
        0,
        PARENTS_INFORMED,
    )
    assert body.parent_message == WORDS and body.reference == state.reference
    assert request.causation_id == recorded[0].event_id
    message = render(body, console_url="https://console.example", ack_token="t0k3n")
    assert message.with_link is False and message.ack_url == "" and "t0k3n" not in repr(message)
    assert state.reference in message.email_body and "Pat" not in repr(message)


INVALID = [
    ("email", "not-an-address"),
    ("email", "two@@example.org"),
    ("email", "a@b"),
    ("email", "a b@example.org"),
    ("email", "a@example.org, b@example.org"),
    ("email", "a..b@example.org"),
    ("sms", "07700 900123"),
    ("sms", "+0 7700 900123"),
    ("sms", "+44 7700 900123 ext 4"),
    ("sms", "+12"),
    ("push", "s-bird"),
]


@pytest.mark.parametrize(("channel", "address"), INVALID)
def test_an_address_the_channel_cannot_use_is_refused_by_name(channel: str, address: str) -> None:
    with pytest.raises(ValidationError):
        parse_command(asked(a_case(), channel=channel, address=address))


@pytest.mark.parametrize(
    ("channel", "address", "kept"),
    [
        ("email", " a.b+c@School.Example.ORG ", "a.b+c@school.example.org"),
        ("sms", "+44 7700-900123", "+447700900123"),
        ("sms", "+44 (7700) 900.123", "+447700900123"),
    ],
)
def test_addresses_are_kept_in_one_form(channel: str, address: str, kept: str) -> None:
    parsed = parse_command(asked(a_case(), channel=channel, address=address))
    assert parsed.address == kept  # type: ignore[union-attr]
