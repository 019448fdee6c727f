"""The channel contract every adapter keeps, and the log channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from services.notifications.domain import RenderedNotification

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A channel could not deliver; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class SentUnconfirmed(Exception):
    """Cut off after the point of no return: the message may have reached the person, so it is never re-sent."""


async def no_commit_point(end_of_data: Callable[[], None]) -> None:
    """For callers with nothing to record before the message becomes final: end it at once."""
    end_of_data()


@dataclass(frozen=True)
class Delivery:
    notification_id: str
    address: str
    message: RenderedNotification
    commit_point: Callable[[Callable[[], None]], Awaitable[None]] = field(default=no_commit_point, compare=False)
    """Given the action that makes the send final (SMTP's end of data), records the attempt and calls it."""


class Channel(Protocol):
    name: str
    resend_safe: bool
    """Whether a send cut off by a crash may be repeated: the person sees one message either way."""

    async def send(self, delivery: Delivery) -> str:
        """Send; return the provider's message id, or raise DeliveryFailed (or SentUnconfirmed)."""
        ...


class LogChannel:
    """Logs that a message would have left, by notification id only (a phone number or address is personal data)."""

    resend_safe = True  # nothing leaves

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, delivery: Delivery) -> str:
        log.info("notify via %s: notification %s (%s)", self.name, delivery.notification_id, delivery.message.title)
        return f"log:{delivery.notification_id}"
