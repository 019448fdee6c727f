"""The report form, pure: policy questions in, a posted form's fields out as a concern; files judged by content."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake import csrf
from services.intake.attachments import judge, sniff
from services.intake.form_data import Submission, concern_from_form, form_spec, read_form
from services.routing.policy.load import load_policy
from shared.contracts.concern import PersonRole
from tests.conftest import REPO_ROOT

SPEC = form_spec(load_policy(REPO_ROOT / "deploy" / "policies" / "st-marks.yaml"))


def posted(**fields: str) -> Submission:
    base = {"reporter_role": "staff", "about": "learner", "kind": "online_bullying", "immediate_risk": "no"}
    return Submission({k: [v] for k, v in {**base, "summary": "Unkind messages", **fields}.items()})


def test_the_page_asks_the_policys_questions_and_offers_its_adults() -> None:
    assert [q.id for q in SPEC.questions][:4] == ["reporter", "people", "kind", "immediate_risk"]
    assert ("s-bird", "designated_safeguarding_lead") not in [(a.person_id, a.role) for a in SPEC.adults]
    assert {a.person_id: a.role for a in SPEC.adults}["headteacher"] == "headteacher"
    assert "kent-lado" not in {a.person_id for a in SPEC.adults}  # external people are not at the school


def test_an_adult_chosen_from_the_picker_gives_routing_a_person_id() -> None:
    concern = concern_from_form(posted(about="adult_at_school", about_person_id="headteacher"), spec=SPEC)
    [person] = concern.people
    assert (person.person_id, person.role, person.name) == ("headteacher", PersonRole.headteacher, None)


def test_an_adult_not_on_the_picker_is_refused_naming_the_control() -> None:
    with pytest.raises(ValueError, match="about_person_id"):
        concern_from_form(posted(about="adult_at_school", about_person_id="nobody"), spec=SPEC)


@pytest.mark.parametrize(
    ("answer", "immediate_risk", "recorded"),
    [
        ("yes", "yes", "yes"),
        ("no", "no", "no"),
        ("not_sure", "not_sure", "not_sure"),
        ("", "not_answered", "not_answered"),
    ],
)
def test_not_sure_or_unanswered_about_risk_is_never_read_as_no(answer, immediate_risk, recorded) -> None:
    concern = concern_from_form(posted(immediate_risk=answer), spec=SPEC)
    assert concern.immediate_risk == immediate_risk and concern.answers["immediate_risk"] == recorded


def test_not_sure_about_school_hours_is_left_unknown() -> None:
    concern = concern_from_form(posted(in_school_hours="not_sure"), spec=SPEC)
    assert concern.in_school_hours is None and concern.answers["in_school_hours"] == "not_sure"


def test_an_anonymous_reporter_gives_no_name_even_if_one_was_typed() -> None:
    concern = concern_from_form(posted(reporter_role="anonymous", reporter_name="Typed Name"), spec=SPEC)
    assert concern.reporter.anonymous and concern.reporter.name is None


def test_a_local_time_is_read_in_the_schools_timezone() -> None:
    concern = concern_from_form(posted(occurred_at="2026-07-01T09:30"), spec=SPEC)
    assert concern.occurred_at is not None and str(concern.occurred_at.utcoffset()) == "1:00:00"  # BST


def test_a_missing_summary_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        concern_from_form(posted(summary=""), spec=SPEC)
    assert ("summary",) in [e["loc"] for e in refused.value.errors()]


def test_an_urlencoded_post_reads_like_a_multipart_one() -> None:
    body = urlencode({"summary": "Café ☕", "kind": "harmful_post"}).encode()
    form = read_form(body, content_type="application/x-www-form-urlencoded")
    assert (form.one("summary"), form.one("kind")) == ("Café ☕", "harmful_post")


@given(
    st.binary(max_size=400), st.sampled_from(["multipart/form-data; boundary=x", "multipart/form-data", "text/plain"])
)
def test_any_body_reads_as_a_form_or_a_value_error(body: bytes, content_type: str) -> None:
    try:
        assert isinstance(read_form(body, content_type=content_type), Submission)
    except ValueError as refused:
        assert "form" in str(refused)


@pytest.mark.parametrize(
    ("data", "media_type", "allowed"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png", True),
        (b"\xff\xd8\xff\xe0....", "image/jpeg", True),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", True),
        (b"%PDF-1.7\n...", "application/pdf", True),
        ("A note, with ünïcode\n".encode(), "text/plain", True),
        (b"From: a@example.org\r\nSubject: x\r\n\r\nbody", "message/rfc822", True),
        (b"MZ\x90\x00\x03\x00\x00\x00", "application/octet-stream", False),  # a program, whatever its name says
        (b"PK\x03\x04zip", "application/octet-stream", False),
    ],
)
def test_a_files_type_is_told_by_its_content(data: bytes, media_type: str, allowed: bool) -> None:
    assert sniff(data) == media_type
    assert (judge(data, max_bytes=1000).quarantine_reason is None) is allowed


def test_a_file_over_the_size_limit_is_quarantined_not_dropped() -> None:
    attachment = judge(b"%PDF-" + b"x" * 2000, max_bytes=1000)
    assert attachment.quarantine_reason and "larger" in attachment.quarantine_reason
    assert "quarantined" in attachment.describe() and attachment.sha256 in attachment.describe()


def test_a_csrf_token_is_good_only_with_its_own_cookie_and_our_key() -> None:
    token = csrf.new_token("key")
    assert csrf.token_is_good("key", cookie=token, field=token)
    assert not csrf.token_is_good("key", cookie=csrf.new_token("key"), field=token)
    assert not csrf.token_is_good("other-key", cookie=token, field=token)
    assert not csrf.token_is_good("key", cookie=None, field=token)
    forged = "nonce.0000"
    assert not csrf.token_is_good("key", cookie=forged, field=forged)
