"""Parsing events off the wire: known events round-trip; anything else is rejected with a clear reason."""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from shared.contracts import EventRejected, parse_event, registry
from shared.contracts.envelope import Actor, Event, EventRegistry, json_text, new_event_id, utc_now
from shared.contracts.events import ConcernReceived
from shared.subjects import Subjects
from tests.support.factories import concern_received, report_json


def test_an_event_round_trips_through_its_wire_form() -> None:
    event = concern_received()
    parsed = parse_event(event.to_json())
    assert isinstance(parsed, ConcernReceived)
    assert parsed == event
    assert parse_event(json.loads(event.to_json())) == parsed  # read from the text at once, or from a dictionary


def test_a_caused_event_inherits_correlation_and_trace() -> None:
    cause = concern_received()
    effect = ConcernReceived.new(
        cause.payload,
        school_id="st-marks",
        aggregate_id="x",
        actor=cause.actor,
        occurred_at=cause.occurred_at,
        cause=cause,
    )
    assert effect.correlation_id == cause.correlation_id == cause.event_id
    assert effect.causation_id == cause.event_id
    assert effect.traceparent == cause.traceparent


def test_a_caused_event_carries_a_trace_parent_worked_out_already_as_it_is_given() -> None:
    cause = concern_received()
    given = f"00-{'a' * 32}-{'b' * 16}-01"
    common: dict[str, Any] = {
        "school_id": "st-marks",
        "aggregate_id": "x",
        "actor": cause.actor,
        "occurred_at": cause.occurred_at,
    }
    effect = ConcernReceived.new(cause.payload, cause=cause, traceparent=given, continued=True, **common)
    assert effect.traceparent == given and effect.causation_id == cause.event_id
    assert effect == ConcernReceived.new(  # otherwise as built without it
        cause.payload, cause=cause, event_id=effect.event_id, **common
    ).model_copy(update={"traceparent": given, "recorded_at": effect.recorded_at})


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(1000)]  # more than one read of the random bytes
    assert len(set(ids)) == 1000
    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}
    assert concern_received().event_id.version == 4


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(version=7), "unknown event concern.received v7"),
        (lambda d: d.update(type="concern.misplaced"), "unknown event concern.misplaced"),
        (lambda d: d.pop("type"), "no string 'type'"),
        (lambda d: d.update(version="2"), "integer 'version'"),  # as text: not read leniently as a number
        (lambda d: d.update(school_id="St Marks!"), "school_id"),
        (lambda d: d["payload"].pop("reference"), "payload.reference"),
        (lambda d: d.update(surprise=True), "surprise"),
    ],
)
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")], ids=["spaced", "as-written"])
def test_a_malformed_event_is_rejected_naming_the_problem(mutate, reason: str, separators: tuple[str, str]) -> None:
    """Also when written as this codebase writes events, whose type and version are read without parsing it all."""
    document = json.loads(concern_received().to_json())
    mutate(document)
    with pytest.raises(EventRejected, match=reason.replace(".", r"\.")):
        parse_event(json.dumps(document, separators=separators))


def test_a_type_named_as_written_is_only_a_guess_the_whole_event_is_checked_against() -> None:
    event = concern_received()
    wrong = event.to_json().replace(b'"type":"concern.received"', b'"type":"case.opened"', 1)
    with pytest.raises(EventRejected, match=r"case\.opened"):
        parse_event(wrong)


@pytest.mark.parametrize("raw", [b"", b"[]", b"\xff\xfe", b"null"])
def test_a_body_that_is_not_an_event_object_is_rejected(raw: bytes) -> None:
    with pytest.raises(EventRejected):
        parse_event(raw)


def test_an_old_version_is_upcast_before_parsing() -> None:
    local = EventRegistry()

    class Greeting(BaseModel):
        words: str

    class Greeted(Event[Greeting]):
        TYPE: ClassVar[str] = "greeting.said"
        VERSION: ClassVar[int] = 2
        AGGREGATE: ClassVar[str] = "greeting"

    local.register(Greeted)
    local.register_upcaster(
        "greeting.said", 1, lambda d: {**d, "version": 2, "payload": {"words": d["payload"]["text"]}}
    )
    document = json.loads(concern_received().to_json())
    document.update(type="greeting.said", version=1, payload={"text": "hello"})
    for wire in (document, json.dumps(document), json.dumps(document).encode()):  # a dict, JSON text, bytes
        parsed = local.parse(wire)
        assert isinstance(parsed, Greeted) and parsed.payload.words == "hello"


def test_an_event_class_cannot_carry_another_type() -> None:
    document = json.loads(concern_received().to_json())
    document["type"] = "case.opened"
    with pytest.raises(ValueError, match=r"carries type concern\.received"):
        ConcernReceived.model_validate(document)


def test_every_event_type_has_a_subject_with_its_school() -> None:
    subjects = Subjects(root="sg", stream="SAFEGUARD_EVENTS")
    for event_type, _ in registry().classes():
        subject = subjects.event(school_id="st-marks", event_type=event_type)
        assert subject.startswith("sg.st-marks.") and subject.count(".") == 3
    assert subjects.of_type("concern.received") == "sg.*.concern.received"
    with pytest.raises(ValueError):
        subjects.event(school_id="st-marks", event_type="nodot")


def test_an_old_concern_received_v1_is_upcast_to_v2_and_an_unticked_risk_box_is_not_answered() -> None:
    from shared.contracts.events import ConcernReceivedV1

    current = concern_received()
    for ticked, answer in ((True, "yes"), (False, "not_answered")):
        document = json.loads(current.to_json())
        document["version"] = 1
        document["payload"]["immediate_risk"] = ticked
        ConcernReceivedV1.model_validate(document)  # a valid v1 event, as once published
        parsed = parse_event(json.dumps(document))
        assert isinstance(parsed, ConcernReceived) and parsed.version == 2
        assert parsed.payload.immediate_risk == answer
        assert parsed.event_id == current.event_id


def test_the_json_api_still_takes_the_old_boolean_and_takes_the_new_answers() -> None:
    from shared.contracts.concern import ConcernReport, RiskAnswer

    def risk(value: object) -> RiskAnswer:
        return ConcernReport.model_validate(report_json(immediate_risk=value)).immediate_risk

    assert [risk(v) for v in (True, False, "yes", "no", "not_sure")] == ["yes", "not_answered", "yes", "no", "not_sure"]
    assert ConcernReport.model_validate(report_json()).immediate_risk is RiskAnswer.not_answered


@pytest.mark.parametrize(
    ("reason", "now"),
    [
        ("The DSL decides whether and when parents or carers are told.", "dsl_decides"),
        ("No rule matched this concern: the DSL decides whether and when parents or carers are told.", "dsl_decides"),
        ("The concern is about harm from a parent or carer: they are not informed.", "must_not_tell"),
        ("a reason nobody recognises", "must_not_tell"),
    ],
)
def test_an_old_case_triaged_withhold_is_upcast_by_its_reason_and_unknown_reasons_are_must_not_tell(
    reason: str, now: str
) -> None:
    from shared.contracts.events import CaseTriaged, CaseTriagedV1

    payload = {
        "case_id": "case-1",
        "reference": "SG-OLD-1",
        "category": "child_protection",
        "urgency": "high",
        "rule_ids": [],
        "policy_version": 1,
        "notify_roles": ["designated_safeguarding_lead"],
        "recipients": [],
        "parents": "withhold",
        "parents_reason": reason,
    }
    old = CaseTriagedV1.new(
        payload,
        school_id="st-marks",
        aggregate_id="case-1",
        actor=Actor(id="routing", role="service"),
        occurred_at=utc_now(),
    )
    parsed = parse_event(old.to_json())
    assert isinstance(parsed, CaseTriaged) and parsed.version == 2
    assert (parsed.payload.parents, parsed.payload.parents_reason) == (now, reason)
    assert parsed.payload.possible_subjects == [] and parsed.payload.subject_to_confirm is False


def test_an_events_json_text_is_the_text_it_was_parsed_from_when_that_is_its_version_as_written() -> None:
    event = concern_received()
    delivered = event.to_json() + b"\n"  # as written, and told apart from a text written again
    assert json_text(event, delivered) == delivered.decode()
    assert json_text(event) == event.to_json().decode()
    old = json.loads(event.to_json())
    old["version"] = 1
    old["payload"]["immediate_risk"] = False
    as_v1 = json.dumps(old, separators=(",", ":")).encode()
    upcast = parse_event(as_v1)
    assert json_text(upcast, as_v1) == upcast.to_json().decode()  # the current version's text, not v1's
    spaced = json.dumps(json.loads(event.to_json())).encode()  # not as this codebase writes an event
    assert json_text(parse_event(spaced), spaced) == event.to_json().decode()
