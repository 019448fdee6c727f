"""The SMTP listener: per-school addresses, each accepted message kept and handed to intake as an email concern."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.intake.door import content_key
from services.intake.email_in import email_parser
from services.intake.handlers import Intake
from shared.contracts.concern import Channel, ConcernReport
from shared.settings import Settings

log = logging.getLogger(__name__)
RFC822 = "message/rfc822"


def mailboxes(settings: Settings) -> dict[str, str]:
    """Each school's reporting address (lower case) -> the school's id."""
    return {address.strip().lower(): school for address, school in settings.intake_email_addresses.items()}


def own_domains(settings: Settings) -> frozenset[str]:
    """Message-ID domains of the mail we send ourselves (lower case)."""
    return frozenset(domain.strip().lower() for domain in settings.intake_own_message_domains)


@dataclass
class SchoolMailboxes:
    """aiosmtpd handler: refuses unknown recipients (550), keeps every message for every school addressed."""

    intake: Intake
    addresses: Mapping[str, str]
    parse: Callable[[bytes], ConcernReport]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self.addresses:
            return "550 5.1.1 No school takes reports at this address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        schools = sorted({self.addresses[address.strip().lower()] for address in envelope.rcpt_tos})
        try:
            for school_id in schools:
                await self.intake.receive(
                    raw,
                    school_id=school_id,
                    channel=Channel.email,
                    content_type=RFC822,
                    parse=self.parse,
                    idempotency_key=content_key(raw),
                )
        except Exception as error:
            # Not kept: a temporary failure makes the sending server try again later, so nothing is lost.
            log.error("email not kept (%s); answered 451 so the sender retries", type(error).__name__)
            return "451 4.3.0 The report could not be kept just now; please try again later"
        return "250 2.0.0 Kept: the school's safeguarding lead will see it"


@asynccontextmanager
async def smtp_listener(intake: Intake, *, settings: Settings) -> AsyncIterator[asyncio.Server | None]:
    """Listen for mail on the configured host and port while the block runs (nothing when no port is set)."""
    if settings.intake_smtp_port is None:
        yield None
        return
    handler = SchoolMailboxes(
        intake=intake,
        addresses=mailboxes(settings),
        parse=email_parser(own_domains=own_domains(settings)),
    )

    # aiosmtpd logs every command line (MAIL FROM carries an address) at INFO: no personal data in our logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    def protocol() -> Any:
        return SMTP(
            handler,
            data_size_limit=settings.intake_max_email_bytes,
            enable_SMTPUTF8=True,
            hostname="safeguard-intake",  # not the machine's FQDN: that would need a DNS lookup per connection
        )

    server = await asyncio.get_running_loop().create_server(
        protocol, host=settings.intake_smtp_host, port=settings.intake_smtp_port
    )
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()
