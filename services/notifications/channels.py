"""Channel adapters: each sends one rendered notification and says whether it left."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from services.notifications.domain import RenderedNotification
from shared.contracts.envelope import utc_now

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A channel could not deliver; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


@dataclass(frozen=True)
class Delivery:
    notification_id: str
    address: str
    message: RenderedNotification


class Channel(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> str:
        """Send; return the provider's message id, or raise DeliveryFailed."""
        ...


class EmailFileSink:
    """Writes each email as an RFC 5322 file named by notification id: a re-send overwrites it."""

    name = "email"

    def __init__(self, directory: str, *, sender: str = "safeguard@localhost") -> None:
        self._directory = Path(directory)
        self._sender = sender

    async def send(self, delivery: Delivery) -> str:
        if "@" not in delivery.address:
            raise DeliveryFailed(f"not an email address: {delivery.address!r}", retryable=False)
        email = EmailMessage()
        email["From"] = self._sender
        email["To"] = delivery.address
        email["Subject"] = delivery.message.title
        email["Date"] = format_datetime(utc_now())
        email["Message-ID"] = make_msgid(idstring=delivery.notification_id, domain="safeguard.local")
        email.set_content(f"{delivery.message.body}\n\nAcknowledge: {delivery.message.ack_url}\n")
        self._directory.mkdir(parents=True, exist_ok=True)
        target = self._directory / f"{delivery.notification_id}.eml"
        with tempfile.NamedTemporaryFile("wb", dir=self._directory, delete=False, suffix=".tmp") as handle:
            handle.write(bytes(email))
        os.replace(handle.name, target)
        return str(email["Message-ID"])


class LogChannel:
    """Writes the lock-screen-safe text to the log (for push and SMS until their adapters are configured)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, delivery: Delivery) -> str:
        log.info("notify via %s to %s: %s", self.name, delivery.address, delivery.message.title)
        return f"log:{delivery.notification_id}"
