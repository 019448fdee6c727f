"""Signed form webhooks, pure: the HMAC verifier and the per-source field mapping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.webhooks import form_parser, load_mapping, lookup, map_payload, sign, verify
from shared.contracts.concern import ConcernReport, PersonRole
from tests.conftest import REPO_ROOT
from tests.support.forms import google_forms_payload, microsoft_forms_payload

SECRET = "synthetic-secret-0123456789abcdef"
NOW = 1_780_000_000.0
MAPPINGS = REPO_ROOT / "deploy" / "webhooks"


def check(body: bytes, *, timestamp: str, signature: str | None, secret: str | None = SECRET) -> str | None:
    return verify(secret, timestamp=timestamp, signature=signature, body=body, now=NOW, tolerance=300)


def test_a_fresh_correct_signature_is_accepted() -> None:
    stamp = str(int(NOW))
    assert check(b"{}", timestamp=stamp, signature=sign(SECRET, timestamp=stamp, body=b"{}")) is None


@pytest.mark.parametrize(
    ("timestamp", "signature", "secret", "reason"),
    [
        (str(int(NOW)), None, SECRET, "missing"),
        (str(int(NOW)), "sha256=00", SECRET, "does not match"),
        (str(int(NOW) - 301), "sign", SECRET, "replay"),
        (str(int(NOW) + 301), "sign", SECRET, "replay"),
        ("12.5", "sign", SECRET, "unix seconds"),
        (str(int(NOW)), "sign", None, "no secret"),
    ],
)
def test_a_bad_stale_or_unsigned_attempt_is_refused_with_its_reason(timestamp, signature, secret, reason) -> None:
    if signature == "sign":
        signature = sign(SECRET, timestamp=timestamp, body=b"{}")
    refusal = check(b"{}", timestamp=timestamp, signature=signature, secret=secret)
    assert refusal is not None and reason in refusal


@given(body=st.binary(max_size=500), other=st.binary(max_size=500), skew=st.integers(-300, 300))
def test_a_signature_fits_only_its_own_body_and_time(body: bytes, other: bytes, skew: int) -> None:
    stamp = str(int(NOW) + skew)
    signature = sign(SECRET, timestamp=stamp, body=body)
    assert check(body, timestamp=stamp, signature=signature) is None
    if other != body:
        assert check(other, timestamp=stamp, signature=signature) is not None
    assert check(body, timestamp=str(int(NOW) + skew + 1), signature=signature) is not None


@given(
    timestamp=st.one_of(st.none(), st.text(max_size=20)),
    signature=st.one_of(st.none(), st.text(max_size=80)),
    body=st.binary(max_size=200),
)
def test_the_verifier_never_raises_on_any_headers(timestamp, signature, body) -> None:
    assert isinstance(verify(SECRET, timestamp=timestamp, signature=signature, body=body, now=NOW, tolerance=300), str)


def test_the_microsoft_forms_mapping_makes_a_concern_and_not_sure_is_never_no() -> None:
    parse = form_parser(load_mapping(MAPPINGS / "microsoft-forms.yaml"))
    concern = parse(json.dumps(microsoft_forms_payload()).encode())
    assert (concern.reporter.role, concern.reporter.contact) == (PersonRole.parent_carer, "parent@example.org")
    assert (concern.kind, concern.platform, concern.people[0].role) == ("online_bullying", "TikTok", PersonRole.learner)
    assert concern.immediate_risk == "not_sure" and concern.answers["immediate_risk"] == "Not sure"


def test_the_google_forms_mapping_keeps_an_anonymous_reporter_anonymous() -> None:
    parse = form_parser(load_mapping(MAPPINGS / "google-forms.yaml"))
    concern = parse(json.dumps(google_forms_payload()).encode())
    assert concern.reporter.anonymous and concern.reporter.contact is None
    assert (concern.kind, concern.immediate_risk) == ("staff_social_media_misuse", "no")
    assert concern.summary == "A staff account followed learners"


def test_an_answer_the_mapping_does_not_know_falls_back_to_triage() -> None:
    parse = form_parser(load_mapping(MAPPINGS / "google-forms.yaml"))
    concern = parse(json.dumps(google_forms_payload(**{"What is the concern about?": "Something new"})).encode())
    assert concern.kind == "not_sure"


def test_a_payload_without_a_summary_is_refused_naming_the_field() -> None:
    parse = form_parser(load_mapping(MAPPINGS / "google-forms.yaml"))
    with pytest.raises(ValidationError) as refused:
        parse(json.dumps(google_forms_payload(**{"In one sentence, what happened?": ""})).encode())
    assert ("summary",) in [e["loc"] for e in refused.value.errors()]


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("a.b", 1),
        ("list.1", "y"),
        ("items[title=Q2].response", "two"),
        ("items[title=Q9].response", None),
        ("a.b.c", None),
        ("missing", None),
    ],
)
def test_lookup_follows_dotted_paths_and_list_selectors(path: str, found: object) -> None:
    payload = {
        "a": {"b": 1},
        "list": ["x", "y"],
        "items": [{"title": "Q1", "response": "one"}, {"title": "Q2", "response": "two"}],
    }
    assert lookup(payload, path) == found


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@pytest.mark.parametrize("mapping_file", ["microsoft-forms.yaml", "google-forms.yaml"])
@given(payload=json_values)
def test_any_json_payload_maps_to_a_concern_or_a_value_error(mapping_file: str, payload: object) -> None:
    parse = form_parser(load_mapping(MAPPINGS / mapping_file))
    assert isinstance(map_payload(payload, mapping=load_mapping(MAPPINGS / mapping_file)), dict)
    try:
        assert isinstance(parse(json.dumps(payload).encode()), ConcernReport)
    except ValueError as refused:  # ValidationError is a ValueError: refused with a reason, never anything else
        assert str(refused)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_with_a_value_error(body: bytes) -> None:
    parse = form_parser(load_mapping(MAPPINGS / "google-forms.yaml"))
    try:
        assert isinstance(parse(body), ConcernReport)
    except ValueError as refused:
        assert str(refused)
