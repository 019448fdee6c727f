"""After each attempt: sent, retried with back-off while the fault is transient, or failed for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.attempts import after_attempt

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BACKOFF = (5.0, 30.0, 120.0)


@pytest.mark.parametrize(
    ("attempt", "failure", "retryable", "status", "retry_in", "announced"),
    [
        (1, None, False, "sent", None, "sent"),
        (1, "mail server said 421", True, "requested", 5, None),
        (2, "mail server said 421", True, "requested", 30, None),
        (4, "mail server said 421", True, "requested", 120, None),  # the last back-off repeats
        (5, "mail server said 421", True, "failed", None, "failed"),  # out of attempts
        (1, "not a phone number", False, "failed", None, "failed"),  # permanent at once
    ],
)
def test_an_attempt_is_sent_retried_or_failed(
    attempt: int, failure: str | None, retryable: bool, status: str, retry_in: int | None, announced: str | None
) -> None:
    outcome = after_attempt(
        attempt,
        now=NOW,
        provider_id="SM1",
        failure=failure,
        retryable=retryable,
        max_attempts=5,
        backoff=BACKOFF,
    )
    assert outcome.status == status
    assert outcome.retry_at == (None if retry_in is None else NOW + timedelta(seconds=retry_in))
    assert outcome.announced == announced


def test_a_fault_that_outlasts_every_attempt_says_so() -> None:
    outcome = after_attempt(3, now=NOW, failure="SMS provider unreachable", retryable=True, max_attempts=3)
    assert outcome.detail == "gave up after 3 attempts: SMS provider unreachable"
