"""Email-in as a pure parser: each real-world-shaped email is one concern, one quarantine or one automated message."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.email_in import (
    UNTRIAGED_KIND,
    Automated,
    AutomatedMessage,
    Quarantine,
    email_parser,
    read_email,
    recipients,
)
from shared.contracts.concern import ConcernReport, PersonRole
from tests.support.emails import SHAPES, sample_emails

OURS = frozenset({"safeguard.local"})


def outcome_kind(outcome: object) -> str:
    return {ConcernReport: "concern", Quarantine: "quarantine", Automated: "automated"}[type(outcome)]


def test_200_real_world_shaped_emails_each_become_exactly_what_they_should() -> None:
    seen: Counter[str] = Counter()
    for sample in sample_emails(200):
        outcome = read_email(sample.raw, own_domains=OURS)
        assert outcome_kind(outcome) == sample.expected, (sample.shape, outcome)
        if isinstance(outcome, ConcernReport):
            assert outcome.summary and sample.marker and sample.marker in outcome.details, sample.shape
        else:
            assert outcome.reason, sample.shape
        seen[sample.expected] += 1
    assert sum(seen.values()) == 200 and len(seen) == 3


def test_every_shape_is_in_the_200() -> None:
    assert len({sample.shape.split()[0] for sample in sample_emails(200)}) >= len(SHAPES) - 2


def email(headers: str, body: str = "Some words.") -> bytes:
    return f"{headers}\r\n\r\n{body}\r\n".encode()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("From: a@example.org\r\nSubject: Away\r\nAuto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("From: a@example.org\r\nSubject: News\r\nPrecedence: bulk", "Precedence: bulk"),
        ("From: a@example.org\r\nSubject: News\r\nPrecedence: list", "Precedence: list"),
        ("From: a@example.org\r\nSubject: Away\r\nX-Autoreply: yes", "auto-reply"),
        ("From: a@example.org\r\nSubject: Alert\r\nMessage-ID: <x.1@safeguard.local>", "mail loop"),
    ],
)
def test_automated_mail_is_recognised_with_its_reason(headers: str, reason: str) -> None:
    outcome = read_email(email(headers), own_domains=OURS)
    assert isinstance(outcome, Automated) and reason in outcome.reason


def test_auto_submitted_no_is_a_person_writing() -> None:
    outcome = read_email(email("From: a@example.org\r\nSubject: Hello\r\nAuto-Submitted: no"), own_domains=OURS)
    assert isinstance(outcome, ConcernReport)


def test_an_email_concern_goes_to_the_dsl_to_triage_unless_its_words_say_otherwise() -> None:
    plain = read_email(email("From: A Parent <p@example.org>\r\nSubject: A worry"), own_domains=OURS)
    assert isinstance(plain, ConcernReport)
    assert (plain.kind, plain.immediate_risk) == (UNTRIAGED_KIND, "not_answered")
    assert plain.answers == {}
    assert (plain.reporter.name, plain.reporter.contact, plain.reporter.role) == (
        "A Parent",
        "p@example.org",
        PersonRole.unknown,
    )
    urgent = read_email(
        email("From: p@example.org\r\nSubject: Help", "She is in danger, being bullied."), own_domains=OURS
    )
    assert isinstance(urgent, ConcernReport)
    assert (urgent.kind, urgent.immediate_risk, urgent.answers) == ("online_bullying", "yes", {})


def test_a_message_without_a_sender_is_anonymous() -> None:
    outcome = read_email(email("Subject: No sender here"), own_domains=OURS)
    assert isinstance(outcome, ConcernReport) and outcome.reporter.anonymous


def test_a_long_subject_is_cut_to_fit_the_summary() -> None:
    outcome = read_email(email("From: p@example.org\r\nSubject: " + "word " * 100), own_domains=OURS)
    assert isinstance(outcome, ConcernReport) and len(outcome.summary) == 300 and outcome.summary.endswith("…")


def test_the_parse_function_raises_value_errors_that_say_why() -> None:
    parse = email_parser(own_domains=OURS)
    with pytest.raises(AutomatedMessage, match="Precedence"):
        parse(email("From: a@example.org\r\nSubject: x\r\nPrecedence: junk"))
    with pytest.raises(ValueError, match="empty"):
        parse(b"   ")
    assert parse(email("From: a@example.org\r\nSubject: x")).summary == "x"


def test_recipients_are_read_from_delivery_headers_first() -> None:
    raw = email("Delivered-To: report@st-marks.example.org\r\nTo: Someone <other@example.org>\r\nSubject: x")
    assert recipients(raw) == ["report@st-marks.example.org", "other@example.org"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise_out_of_the_parser(raw: bytes) -> None:
    outcome = read_email(raw, own_domains=OURS)
    assert all("@" in address for address in recipients(raw))
    assert isinstance(outcome, ConcernReport | Quarantine | Automated)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                ["From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "X"]
            ),
            st.text(max_size=60),
        ),
        max_size=8,
    ),
    body=st.binary(max_size=500),
)
def test_header_shaped_garbage_never_raises_out_of_the_parser(headers: list[tuple[str, str]], body: bytes) -> None:
    raw = (
        b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers) + b"\r\n" + body
    )
    outcome = read_email(raw, own_domains=OURS)
    assert isinstance(outcome, ConcernReport | Quarantine | Automated)
