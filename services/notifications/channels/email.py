"""Email: one composed message (plain text + HTML), sent over SMTP (aiosmtplib) or kept in a folder."""

from __future__ import annotations

import html
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib
from aiosmtplib.email import extract_sender, flatten_message

from services.notifications import mailbox
from services.notifications.channels.base import Delivery, DeliveryFailed, SentUnconfirmed
from services.notifications.channels.smtp_commit import CommitPointSMTP, EndOfDataUnanswered
from shared.contracts.envelope import utc_now


def _transfer_encoding(text: str) -> str:
    """7bit keeps a long link on one line for anyone reading the raw message; anything else is quoted-printable."""
    plain_ascii = text.isascii() and all(len(line) <= 998 for line in text.splitlines())
    return "7bit" if plain_ascii else "quoted-printable"


def compose_email(delivery: Delivery, *, sender: str, at: datetime) -> EmailMessage:
    """The email for one notification; its Message-ID is derived from the notification, so a re-send is the same."""
    if "@" not in delivery.address:
        raise DeliveryFailed(f"not an email address (notification {delivery.notification_id})", retryable=False)
    message = delivery.message
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = sender
    email["To"] = delivery.address
    email["Subject"] = message.subject or message.title
    email["Date"] = format_datetime(at)
    # RFC 5322 section 3.6.4: the same message keeps the same id. make_msgid would add a time and a random part,
    # so a re-send after a crash would look like a second message; this id is the notification's own.
    email["Message-ID"] = f"<{delivery.notification_id}@safeguard.local>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to an alert
    link = f"\n\n{message.action}:\n{message.ack_url}" if message.with_link else ""
    footer = f"\n\n{message.footer}" if message.footer else ""
    text = message.email_body or message.body
    plain = f"{text}{link}{footer}\n"
    email.set_content(plain, cte=_transfer_encoding(plain))
    button = (
        f'<p><a href="{html.escape(message.ack_url, quote=True)}" '
        'style="display:inline-block;padding:10px 16px;background:#1d4f91;color:#fff;text-decoration:none">'
        f"{html.escape(message.action)}</a></p>"
    )
    page = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>{html.escape(text)}</p>{button if message.with_link else ''}"
        f'<p style="color:#555">{html.escape(message.footer)}</p></body></html>\n'
    )
    email.add_alternative(page, subtype="html", cte=_transfer_encoding(page))
    return email


class EmailFileSink:
    """Keeps each email as an .eml file named by notification id (a re-send overwrites it): no mail server needed."""

    name = "email"
    resend_safe = True  # the file is named by notification id: a re-send overwrites it

    def __init__(self, directory: str, *, sender: str = "safeguard@localhost") -> None:
        self._directory = Path(directory)
        self._sender = sender

    async def send(self, delivery: Delivery) -> str:
        email = compose_email(delivery, sender=self._sender, at=utc_now())
        mailbox.keep(self._directory, bytes(email), name=delivery.notification_id)
        return str(email["Message-ID"])


class SmtpChannel:
    """Sends through an SMTP server, with STARTTLS or implicit TLS as configured.

    The delivery's commit point is awaited just before the end-of-data terminator (see `smtp_commit`): an
    attempt cut off before it sent nothing the server kept, so it is re-sent; one cut off after it is never
    re-sent (`SentUnconfirmed`).
    """

    name = "email"
    resend_safe = True  # a re-send only follows an attempt the server discarded (no terminator reached it)

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str | None,
        password: str | None,
        sender: str,
        timeout_seconds: float,
        ca_file: str | None = None,
    ) -> None:
        self._server = {
            "hostname": host,
            "port": port,
            "use_tls": security == "tls",
            "start_tls": security == "starttls",
            "username": username,
            "password": password,
            "timeout": timeout_seconds,
            "cert_bundle": ca_file,
        }
        self._sender = sender

    async def send(self, delivery: Delivery) -> str:
        email = compose_email(delivery, sender=self._sender, at=utc_now())
        try:
            client = CommitPointSMTP(**self._server)  # type: ignore[arg-type]
            async with client:
                await client.mail(extract_sender(email) or self._sender)
                await client.rcpt(delivery.address)
                await client.data_with_commit_point(
                    flatten_message(email, cte_type="7bit"), commit_point=delivery.commit_point
                )
        except EndOfDataUnanswered as unanswered:
            raise SentUnconfirmed(f"no reply to the end of data ({unanswered})") from unanswered
        except aiosmtplib.SMTPRecipientRefused as refused:
            raise DeliveryFailed(
                f"mail server refused the recipient ({refused.code})", retryable=refused.code < 500
            ) from refused
        except aiosmtplib.SMTPResponseException as error:
            # 4xx is the server asking us to come back later; 5xx is a refusal that will not change.
            raise DeliveryFailed(f"mail server said {error.code}", retryable=error.code < 500) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"mail server unreachable: {type(error).__name__}", retryable=True) from error
        return str(email["Message-ID"])
