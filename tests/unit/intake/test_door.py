"""The door's pure parts: a bounded read, a token bucket per client, storable text and error locations."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.intake.door import RateLimiter, escape_unstorable, parse_concern_json, read_limited, retry_after_header
from shared.contracts.concern import ConcernReport
from tests.support.factories import report_json


async def chunks_of(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    ("length", "limit", "kept", "truncated"),
    [(0, 10, 0, False), (10, 10, 10, False), (11, 10, 10, True), (1000, 10, 10, True), (5, 10, 5, False)],
)
async def test_a_body_is_read_up_to_the_limit_and_no_further(length, limit, kept, truncated) -> None:
    body = await read_limited(chunks_of(b"x" * length, 3), limit=limit)
    assert (len(body.data), body.truncated) == (kept, truncated)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_burst_then_waits_for_tokens_to_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=2.0, burst=3, clock=clock)
    assert [limiter.take("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("10.0.0.1") == pytest.approx(0.5)
    assert limiter.take("10.0.0.2") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert limiter.take("10.0.0.1") == 0.0


def test_the_limiter_forgets_the_longest_unseen_clients_beyond_its_bound() -> None:
    limiter = RateLimiter(per_second=1.0, burst=1, clock=FakeClock(), max_clients=2)
    for client in ("a", "b", "c"):
        limiter.take(client)
    assert limiter.take("c") > 0  # still remembered
    assert limiter.take("a") == 0.0  # forgotten, so it starts afresh


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")])
def test_retry_after_is_whole_seconds_and_never_zero(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("summary", "a\u0000b"),
        ("details", "before \u0000 after"),
        ("platform", "\u0000"),
    ],
)
def test_nul_in_a_text_field_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_concern_json(json.dumps(report_json(**{field: value})).encode())
    [error] = refused.value.errors()
    assert error["loc"] == (field,) and "NUL" in error["msg"]


def test_a_nul_in_a_persons_name_names_the_nested_field() -> None:
    body = report_json(people=[{"role": "learner", "involvement": "victim", "name": "A\u0000"}])
    with pytest.raises(ValidationError) as refused:
        parse_concern_json(json.dumps(body).encode())
    assert [e["loc"] for e in refused.value.errors()] == [("people", 0, "name")]


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError):
        ConcernReport.model_validate(report_json(summary="half a pair \ud800"))
    with pytest.raises(ValidationError):
        parse_concern_json(b'{"summary": "\\ud800"}')


def test_an_unknown_field_whose_name_holds_nul_is_named_with_an_escape() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_concern_json(json.dumps({**report_json(), "bad\u0000key": 1}).encode())
    [error] = refused.value.errors()
    assert error["loc"] == ("bad\\u0000key",)


@given(st.text())
def test_escaped_text_is_always_storable(text: str) -> None:
    escaped = escape_unstorable(text)
    assert "\x00" not in escaped
    escaped.encode("utf-8")  # raises on a lone surrogate
    if "\x00" not in text and all(not "\ud800" <= c <= "\udfff" for c in text):
        assert escaped == text
