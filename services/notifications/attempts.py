"""What an attempt's result means for the delivery: sent, try again later, or failed for good (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# How long to wait before the n-th retry (the last entry repeats): transient faults clear quickly or not at all.
DEFAULT_BACKOFF_SECONDS = (5.0, 30.0, 120.0, 600.0)


@dataclass(frozen=True)
class AttemptOutcome:
    """The delivery's next state, and which event (if any) announces it."""

    status: Literal["sent", "requested", "failed"]
    detail: str
    retry_at: datetime | None = None

    @property
    def announced(self) -> Literal["sent", "failed"] | None:
        """notification.sent or notification.failed once the outcome is final; nothing while retrying."""
        return None if self.status == "requested" else self.status


def after_attempt(
    attempt: int,
    *,
    now: datetime,
    provider_id: str | None = None,
    failure: str | None = None,
    retryable: bool = False,
    max_attempts: int,
    backoff: Sequence[float] = DEFAULT_BACKOFF_SECONDS,
) -> AttemptOutcome:
    """Sent with `provider_id`; else retried with back-off while `retryable` and attempts remain; else failed."""
    if failure is None:
        return AttemptOutcome("sent", provider_id or "")
    if retryable and attempt < max_attempts:
        delay = backoff[min(attempt, len(backoff)) - 1] if backoff else 0.0
        return AttemptOutcome("requested", f"attempt {attempt}: {failure}", now + timedelta(seconds=delay))
    if retryable:
        return AttemptOutcome("failed", f"gave up after {attempt} attempts: {failure}")
    return AttemptOutcome("failed", failure)
