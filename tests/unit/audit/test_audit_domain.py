"""Reading an entry's event id from its canonical bytes without decoding the rest gives what decoding gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audit.domain import _ENVELOPE_START, canonical_json, event_id_in
from tests.support.samples import current_classes, sample_event, tokens

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


def test_every_event_types_id_is_read_from_its_bytes() -> None:
    for cls in current_classes():
        document = sample_event(cls, token=tokens()).model_dump(mode="json")
        assert event_id_in(canonical_json(document)) == document["event_id"]


def test_the_words_inside_an_earlier_value_or_a_nested_object_are_not_the_id() -> None:
    decoy = '","event_id":"decoy'
    document = {
        "actor": {"id": decoy, "role": '"event_id":"decoy"'},
        "aggregate_id": decoy,
        "causation_id": None,
        "event_id": "the-real-one",
        "payload": {"event_id": "nested"},
    }
    assert event_id_in(canonical_json(document)) == "the-real-one"
    assert event_id_in(canonical_json({"payload": {"event_id": "nested"}, "type": "x"})) is None


@given(st.dictionaries(st.sampled_from(["actor", "aggregate_id", "event_id", "payload", "é", "ü"]) | st.text(), JSON))
def test_it_agrees_with_decoding_the_whole_event(document: dict[str, Any]) -> None:
    assert event_id_in(canonical_json(document)) == document.get("event_id")


@pytest.mark.parametrize(("raw", "error"), [(b"[1]", AttributeError), (b'{"event_id":', ValueError), (b"", ValueError)])
def test_bytes_that_are_no_event_fail_as_decoding_them_does(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        json.loads(raw).get("event_id")
    with pytest.raises(error):
        event_id_in(raw)


@given(st.dictionaries(st.text(), JSON))
def test_canonical_bytes_are_json_dumps_sorted_compact_utf8(document: dict[str, Any]) -> None:
    # The hashed form since the first entry: the encoder made once (no circular-reference check) writes the same
    # bytes json.dumps writes with these options, for any JSON value (text beyond ASCII, escapes, floats, nesting).
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_json(document) == expected


def test_canonical_bytes_of_a_fixed_document_are_unchanged() -> None:
    document = {"b": [1, 2.5, None, True], "a": {"é": 'line\nbreak "quoted" \u2028', "z": -0.0, "y": 1e16}}
    expected = b'{"a":{"y":1e+16,"z":-0.0,"\xc3\xa9":"line\\nbreak \\"quoted\\" \xe2\x80\xa8"},"b":[1,2.5,null,true]}'
    assert canonical_json(document) == expected


def test_an_events_id_is_read_from_the_start_of_its_bytes_without_parsing() -> None:
    for cls in current_classes():
        canonical = canonical_json(sample_event(cls, token=tokens()).model_dump(mode="json"))
        assert _ENVELOPE_START.match(canonical.decode()), cls  # the checkpointer's per-entry path


ENVELOPE_TEXT = st.text() | st.sampled_from(['"', "\\", '","event_id":"decoy', "\u2028", "\x1f", "é"])


@given(
    actor=st.fixed_dictionaries({"id": ENVELOPE_TEXT, "role": ENVELOPE_TEXT}),
    aggregate=ENVELOPE_TEXT,
    causation=st.none() | ENVELOPE_TEXT,
    correlation=ENVELOPE_TEXT,
    event_id=st.uuids().map(str) | ENVELOPE_TEXT,
    rest=st.dictionaries(st.sampled_from(["payload", "type", "version"]), JSON),
)
def test_an_envelope_shaped_document_gives_the_id_decoding_gives(
    actor: dict[str, str], aggregate: str, causation: str | None, correlation: str, event_id: str, rest: dict[str, Any]
) -> None:
    document = {
        "actor": actor,
        "aggregate_id": aggregate,
        "causation_id": causation,
        "correlation_id": correlation,
        "event_id": event_id,
        **rest,
    }
    assert event_id_in(canonical_json(document)) == event_id


@pytest.mark.parametrize(
    "text",
    [
        '{"actor":{"id":"a\x01b","role":"r"},"aggregate_id":"x","causation_id":null,"correlation_id":"c",'
        '"event_id":"00000000-0000-0000-0000-000000000001"}',  # a raw control character: not JSON
        '{"actor":{"id":"a\\qb","role":"r"},"aggregate_id":"x","causation_id":null,"correlation_id":"c",'
        '"event_id":"00000000-0000-0000-0000-000000000001"}',  # an escape JSON does not have
    ],
)
def test_bytes_that_are_not_json_are_refused_as_decoding_refuses_them(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        event_id_in(text.encode())
