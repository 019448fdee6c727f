"""The personal-field map: every event type classified, every declared path real, and whose key each field takes."""

from __future__ import annotations

from typing import Any

import pytest

from services.audit.personal import NO_PERSONAL_DATA, PERSONAL, case_of, locate
from services.routing.domain import case_id_for
from shared.contracts.events import ConcernReceived, PersonRef
from tests.support.factories import concern_received, notification_requested
from tests.support.samples import current_classes, sample_event, tokens

CLASSES = list(current_classes())


def test_every_event_type_is_classified_once_as_personal_or_not() -> None:
    types = {cls.TYPE for cls in CLASSES}
    assert set(PERSONAL) | NO_PERSONAL_DATA == types
    assert not set(PERSONAL) & NO_PERSONAL_DATA


@pytest.mark.parametrize("cls", [cls for cls in CLASSES if cls.TYPE in PERSONAL], ids=lambda cls: cls.TYPE)
def test_every_declared_path_is_a_field_of_the_event(cls: Any) -> None:
    document = sample_event(cls, token=tokens()).model_dump(mode="json")  # every field filled, lists of one
    found = {".".join(str(step) for step in item.path) for item in locate(document)}
    declared = {field.path.replace("[]", ".0") for field in PERSONAL[cls.TYPE]}
    assert found == declared


def subjects(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {".".join(map(str, item.path)): (item.subject, item.subject_id) for item in locate(document)}


def test_a_concern_seals_its_reporter_by_person_id_or_contact_and_its_narrative_under_its_case() -> None:
    concern = concern_received()
    document = concern.model_dump(mode="json")
    document["payload"]["reporter"] = {"role": "parent_carer", "name": "Sam Carer", "contact": " Sam@Example.org "}
    document["payload"]["people"] = [
        {"role": "learner", "involvement": "subject", "name": "Alex Pupil", "age": 12, "person_id": None},
        {"role": "staff", "involvement": "alleged_perpetrator", "name": "Mr Staff", "person_id": "staff-9"},
    ]
    case = case_id_for(ConcernReceived.model_validate(document))
    assert case_of(document) == case
    found = subjects(document)
    assert found["payload.reporter.name"] == ("reporter", "sam@example.org")
    assert found["payload.reporter.contact"] == ("reporter", "sam@example.org")
    assert found["payload.people.0.name"] == ("case", case)  # a child named without an id: the case's key
    assert found["payload.people.0.age"] == ("case", case)
    assert found["payload.people.1.name"] == ("person", "staff-9")
    assert found["payload.summary"] == found["payload.details"] == ("case", case)
    assert "payload.people.1.age" not in found  # nothing given, nothing sealed
    document["payload"]["reporter"]["person_id"] = "parent-3"
    assert subjects(document)["payload.reporter.contact"] == ("person", "parent-3")
    document["payload"]["reporter"] = {"anonymous": True}
    assert not [path for path in subjects(document) if path.startswith("payload.reporter")]


def test_a_notification_seals_its_address_and_name_under_the_recipients_key() -> None:
    recipient = PersonRef(person_id="dsl-1", name="Dee Lead", role="designated_safeguarding_lead")
    document = notification_requested(channel="email", address="dee@example.org", recipient=recipient).model_dump(
        mode="json"
    )
    assert subjects(document) == {"payload.recipient.name": ("person", "dsl-1"), "payload.address": ("person", "dsl-1")}


def test_a_view_reason_is_the_cases_or_the_school_records() -> None:
    document: dict[str, Any] = {
        "type": "record.viewed",
        "payload": {"record_kind": "case", "record_id": "case-1", "reason": "strategy meeting"},
    }
    assert subjects(document) == {"payload.reason": ("case", "case-1")}
    document["payload"].update(record_kind="school_record", record_id="st-marks")
    assert subjects(document) == {"payload.reason": ("record", "")}


def test_a_parent_told_is_sealed_under_their_own_key_and_the_decisions_reason_under_the_cases() -> None:
    document = {
        "type": "case.parents_informed",
        "payload": {
            "case_id": "case-1",
            "parent_id": "parent-0a1b",
            "name": "Pat Example",
            "relationship": "mother",
            "channel": "email",
            "address": "pat@example.org",
            "notification_id": "n-1",
            "words": {"school_name": "Test Primary School"},
            "basis": "Agreed with the learner",
        },
    }
    parent = ("person", "parent-0a1b")
    assert subjects(document) == {
        "payload.name": parent,
        "payload.relationship": parent,
        "payload.address": parent,
        "payload.basis": ("case", "case-1"),
    }
