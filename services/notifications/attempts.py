"""A delivery's attempts as plain data: claimed, finished, and what a result means for the delivery (sent, try again
later, or failed for good). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.contracts.envelope import Event
from shared.contracts.events import NotificationRequested

# How long to wait before the n-th retry (the last entry repeats): transient faults clear quickly or not at all.
DEFAULT_BACKOFF_SECONDS = (5.0, 30.0, 120.0, 600.0)


@dataclass(frozen=True)
class AttemptOutcome:
    """The delivery's next state, and which event (if any) announces it."""

    status: Literal["sent", "sent_unconfirmed", "requested", "failed"]
    detail: str
    retry_at: datetime | None = None

    @property
    def announced(self) -> Literal["sent", "failed"] | None:
        """notification.sent or notification.failed once the outcome is final; nothing while retrying.

        `sent_unconfirmed` (cut off past the point of no return) is announced sent: the person counts as told,
        and the acknowledgement deadline, not a second copy, is what catches a message that never arrived.
        """
        if self.status == "requested":
            return None
        return "failed" if self.status == "failed" else "sent"


def unconfirmed(why: str) -> AttemptOutcome:
    """An attempt that passed its point of no return without a reply: recorded sent, never re-sent."""
    return AttemptOutcome("sent_unconfirmed", f"unconfirmed: {why}")


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


@dataclass(frozen=True)
class Attempt:
    """A claimed delivery: the request, which attempt this is, and whether an earlier one was cut off (and where)."""

    notification_id: str
    attempt: int
    request: NotificationRequested
    interrupted: bool
    past_commit_point: bool = False
    """The earlier attempt was cut off after its point of no return: it may have arrived, so it is not re-sent."""


@dataclass(frozen=True)
class Recorded:
    """What recording a batch of requests did: the notification ids new to it, and the attempts it claimed."""

    fresh: set[str]
    claimed: list[Attempt]
    """Recorded `sending` with attempt 1 counted, in the batch's order: for the dispatcher to begin (`HandOver`)."""


@dataclass(frozen=True)
class Finished:
    """An attempt's outcome to record: the delivery's next status, its detail, and when to retry."""

    notification_id: str
    attempt: int
    status: str
    detail: str
    retry_at: datetime | None = None
    announce: Event[Any] | None = None
    """notification.sent or notification.failed, published only if this outcome is recorded."""
