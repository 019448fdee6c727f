"""Email: one composed message (plain text + HTML), sent over SMTP (aiosmtplib) or kept in a folder.

The message is written out directly rather than through the `email` package's modern API, whose header
registry parses every header it is given (and again when it folds it) - most of this service's CPU when every
concern ends in an email. What it writes is the same RFC 5322 / MIME message: CRLF line endings, header lines
within 78 characters where they can be folded, any non-ASCII header text as RFC 2047 encoded words, and a
multipart/alternative body whose parts are 7bit (ASCII, short lines) or quoted-printable UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path

import aiosmtplib

from services.notifications import mailbox
from services.notifications.channels.base import Delivery, DeliveryFailed, SentUnconfirmed
from services.notifications.channels.smtp_commit import CommitPointSMTP, EndOfDataUnanswered
from shared.contracts.envelope import utc_now

CRLF = "\r\n"
FOLD_AT = 78  # RFC 5322 section 2.1.1: a line SHOULD be at most 78 characters, and MUST be at most 998
LONGEST_LINE = 998
# RFC 2047: an encoded word is at most 75 characters; 39 bytes of UTF-8 make 52 of base64, 64 with the
# "=?utf-8?b?" and "?=" around them, so even the first one fits beside a header's name on a 78-character line.
_ENCODED_WORD_BYTES = 39


class UnsendableHeader(ValueError):
    """A header value that cannot be written as given (a line break in it, or an address that is not ASCII)."""


def _no_line_break(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise UnsendableHeader("a header value contains a line break")
    return value


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 base64 encoded words, each of whole characters (a decoder joins adjacent words)."""
    words: list[str] = []
    chunk = bytearray()
    for character in text:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > _ENCODED_WORD_BYTES:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk.clear()
        chunk += encoded
    if chunk:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return words


def _folded(name: str, words: list[str]) -> str:
    """`Name: ` and the words joined by spaces, folded (CRLF before a space) where a line would pass 78."""
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > FOLD_AT:
            lines.append(f" {word}")
        else:
            lines[-1] += f" {word}"
    return CRLF.join(lines)


def unstructured_header(name: str, value: str) -> str:
    """`Name: value` for free text (Subject): folded at spaces when ASCII, as encoded words when not."""
    _no_line_break(value)
    # Written as it is unless a reader would change it: whitespace before the text is dropped, and "=?" may start
    # what a reader takes for an encoded word.
    if value.isascii() and value[:1] not in (" ", "\t") and "=?" not in value:
        line = f"{name}: {value}"
        if len(line) <= FOLD_AT:
            return line
        words = value.split(" ")
        if all(0 < len(word) <= FOLD_AT - len(name) - 2 for word in words):
            return _folded(name, words)
    # Otherwise (non-ASCII, a word too long for a line, spaces that folding could not keep): encoded words carry
    # the text exactly, and the spaces between them are not part of it (RFC 2047 section 6.2).
    return _folded(name, _encoded_words(value))


def address_header(name: str, value: str) -> str:
    """`Name: address` for one mailbox (`a@b` or `Display Name <a@b>`): a non-ASCII display name encoded."""
    _no_line_break(value)
    if not value.isascii():
        display, address = parseaddr(value)
        if not address or not address.isascii():
            raise UnsendableHeader("an email address that is not ASCII (SMTPUTF8 is not used)")
        value = formataddr((display, address), charset="utf-8")
    line = f"{name}: {value}"
    if len(line) > LONGEST_LINE:
        raise UnsendableHeader("an email address longer than a header line may be")
    return line


@lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, str]:
    """The From header line and the envelope sender (the bare address) for a configured sender."""
    return address_header("From", sender), parseaddr(sender)[1] or sender


def _body(text: str) -> tuple[str, bytes]:
    """The part's transfer encoding and its body: CRLF line endings throughout and one at the end.

    7bit keeps a long link on one line for anyone reading the raw message; anything else is quoted-printable.
    """
    lines = text.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    if text.isascii() and all(len(line) <= LONGEST_LINE for line in lines):
        return "7bit", body
    return "quoted-printable", binascii.b2a_qp(body, istext=True)


def _boundary(*bodies: bytes) -> str:
    """A random multipart boundary that no body contains (so no line of a part can be taken for it)."""
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        if not any(boundary.encode("ascii") in body for body in bodies):
            return boundary


def compose_email(delivery: Delivery, *, sender: str, at: datetime) -> bytes:
    """The email for one notification, as sent (CRLF line endings, 7-bit clean).

    Its Message-ID is derived from the notification, so a re-send is the same message.
    """
    if "@" not in delivery.address:
        raise DeliveryFailed(f"not an email address (notification {delivery.notification_id})", retryable=False)
    message = delivery.message
    link = f"\n\n{message.action}:\n{message.ack_url}" if message.with_link else ""
    footer = f"\n\n{message.footer}" if message.footer else ""
    text = message.email_body or message.body
    plain = f"{text}{link}{footer}\n"
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
    try:
        headers = [
            _sender(sender)[0],
            address_header("To", delivery.address),
            unstructured_header("Subject", message.subject or message.title),
            f"Date: {format_datetime(at)}",
            # RFC 5322 section 3.6.4: the same message keeps the same id. make_msgid would add a time and a
            # random part, so a re-send after a crash would look like a second; this id is the notification's own.
            f"Message-ID: {_no_line_break(message_id(delivery))}",
            "Auto-Submitted: auto-generated",  # RFC 3834: no out-of-office replies to an alert
            "MIME-Version: 1.0",
        ]
    except UnsendableHeader as unsendable:
        raise DeliveryFailed(f"{unsendable} (notification {delivery.notification_id})", retryable=False) from None
    plain_encoding, plain_body = _body(plain)
    page_encoding, page_body = _body(page)
    boundary = _boundary(plain_body, page_body)
    headers.append(f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"')
    head = CRLF.join(headers)
    return b"".join(
        (
            f"{head}{CRLF}{CRLF}--{boundary}{CRLF}".encode("ascii"),
            _part_head("plain", plain_encoding),
            plain_body,
            f"{CRLF}--{boundary}{CRLF}".encode("ascii"),
            _part_head("html", page_encoding),
            page_body,
            f"{CRLF}--{boundary}--{CRLF}".encode("ascii"),
        )
    )


def _part_head(subtype: str, encoding: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}'
    ).encode("ascii")


def message_id(delivery: Delivery) -> str:
    """The Message-ID `compose_email` gives this delivery's email."""
    return f"<{delivery.notification_id}@safeguard.local>"


class EmailFileSink:
    """Keeps each email as an .eml file named by notification id (a re-send overwrites it): no mail server needed."""

    name = "email"
    resend_safe = True  # the file is named by notification id: a re-send overwrites it

    def __init__(self, directory: str, *, sender: str = "safeguard@localhost") -> None:
        self._directory = Path(directory)
        self._sender = sender

    async def send(self, delivery: Delivery) -> str:
        email = compose_email(delivery, sender=self._sender, at=utc_now())
        mailbox.keep(self._directory, email, name=delivery.notification_id)
        return message_id(delivery)


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
                await client.mail(_sender(self._sender)[1])
                await client.rcpt(delivery.address)
                await client.data_with_commit_point(email, commit_point=delivery.commit_point)
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
        return message_id(delivery)
