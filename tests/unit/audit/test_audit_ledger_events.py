"""Replay's reader parses ledger events from their canonical bytes exactly as the registry parses them."""

from __future__ import annotations

import pytest

from services.audit.domain import canonical_json
from services.audit.keyring import SchoolKeys
from services.audit.ledger_events import EventReader, type_and_version
from services.audit.replay import CaseFolder, case_event_types
from shared.contracts.envelope import parse_event
from tests.unit.routing_case.cases import opening_events

NO_KEYS = SchoolKeys("st-marks", school_key=None, wrapped={})


def reader() -> EventReader:
    return EventReader(NO_KEYS, wanted=case_event_types())


def test_each_case_event_reads_as_the_registry_parses_it_and_others_are_skipped() -> None:
    events = opening_events()  # the concern received, then the case opened and triaged
    documents = [canonical_json(event.model_dump(mode="json")) for event in events]
    read = [reader().read(document) for document in documents]
    for event, document, got in zip(events, documents, read, strict=True):
        if event.AGGREGATE == "case":
            assert got == parse_event(document) and type(got) is type(event)
        else:
            assert got is None


def test_an_old_version_is_upcast_as_the_registry_does() -> None:
    triaged = next(e for e in opening_events() if e.type == "case.triaged")
    document = triaged.model_dump(mode="json")
    old = canonical_json({**document, "version": 1, "payload": {**document["payload"], "parents": "withhold"}})
    got = reader().read(old)
    assert got is not None and got.version == 2 and got == parse_event(old)


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b'{"payload":{"type":"str"},"type":"case.closed","version":1}', ("case.closed", 1, True)),
        (b'{"type":"case.closed","version":1,"zone":{"type":"x","version":2}}', ("case.closed", 1, False)),
        (b'{"type":"case.closed","version":1,"zone":[{"a":1,"type":"x","version":2}]}', ("case.closed", 1, False)),
    ],
)
def test_the_type_is_read_from_the_tail_only_when_the_tail_closes_the_document(
    tail: bytes, expected: tuple[str, int, bool]
) -> None:
    assert type_and_version(tail) == expected


def test_the_folder_folds_what_the_reader_reads() -> None:
    folder, read = CaseFolder(), reader()
    for event in opening_events():
        parsed = read.read(canonical_json(event.model_dump(mode="json")))
        if parsed is not None:
            folder.add_event(parsed)
    (state,) = folder.cases.values()
    assert state.opened and state.version == 2
