"""Email: a file sink for development, and SMTP (aiosmtplib) for real."""

from __future__ import annotations

import os
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from services.notifications.channels.base import Delivery, DeliveryFailed
from shared.contracts.envelope import utc_now


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
