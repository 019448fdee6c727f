"""The composed email read back with the standard library's parser: headers and text come back exactly, in a
message every line of which is 7-bit, CRLF-ended and within RFC 5322's limits; and the mail folder keeps each
message whole, under its own name, with nothing left beside it."""

from __future__ import annotations

import itertools
import os
import stat
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path

import pytest

from services.notifications import mailbox
from services.notifications.channels import Delivery, DeliveryFailed, EmailFileSink
from services.notifications.channels.email import compose_email
from services.notifications.domain import RenderedNotification

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINK = "https://safeguard.example.org/api/v1/notifications/n-1/ack?token=" + "f" * 29


def notification(subject: str = "", body: str = "A concern needs your attention.", email_body: str = "") -> Delivery:
    message = RenderedNotification(
        title="URGENT safeguarding concern: SG-1", body=body, ack_url=LINK, subject=subject, email_body=email_body
    )
    return Delivery("n-1", "lead@example.org", message)


def lines_of(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b""), "CRLF line endings only"
    return raw[:-2].split(b"\r\n")


def test_an_ascii_email_reads_back_as_a_multipart_alternative_with_its_link_on_one_line() -> None:
    raw = compose_email(notification(), sender="Safeguard <safeguard@example.org>", at=AT)
    message = mailbox.parse(raw)

    assert message["From"].addresses == (Address("Safeguard", addr_spec="safeguard@example.org"),)
    assert str(message["To"]) == "lead@example.org"
    assert str(message["Subject"]) == "URGENT safeguarding concern: SG-1"
    assert message["Date"].datetime == AT
    assert message["Message-ID"] == "<n-1@safeguard.local>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    plain, page = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert plain is not None and page is not None
    assert plain["Content-Transfer-Encoding"] == "7bit" and plain.get_content_charset() == "utf-8"
    assert mailbox.links(message) == [LINK]
    assert f'href="{LINK}"' in page.get_content()
    assert LINK.encode() in lines_of(raw)
    assert not [part.defects for part in message.walk() if part.defects]


def test_non_ascii_names_subjects_and_text_come_back_exactly_as_encoded_words_and_quoted_printable() -> None:
    subject = "Élève à l'école Saint-Étienne — lisez ceci,  s'il vous plaît: 日本語の件名 " * 2
    body = "Bonjour, ça va ?\nUne ligne très longue " + "é" * 200 + "\n\n=3D reste tel quel. \n.\nFrom here"
    raw = compose_email(notification(subject, email_body=body), sender="École Saint-Marc <ecole@example.org>", at=AT)
    message = mailbox.parse(raw)

    assert message["From"].addresses == (Address("École Saint-Marc", addr_spec="ecole@example.org"),)
    assert str(message["Subject"]) == subject
    plain = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert plain is not None and page is not None
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n").startswith(body + "\n\n")
    assert "Une ligne très longue " + "é" * 200 in page.get_content()
    assert not [part.defects for part in message.walk() if part.defects]
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert raw.isascii(), "7-bit clean: no SMTPUTF8 or 8BITMIME needed"
    assert all(len(line) <= 78 for line in lines_of(head + b"\r\n")), "every header line folded within 78"
    assert all(len(line) <= 998 for line in lines_of(rest))


@pytest.mark.parametrize(
    "subject",
    [
        "word " * 30 + "end",
        "A" * 100,
        " leading space",
        "two  spaces and a trailing one " * 3,
        "tab\tinside",
        "looks encoded: =?utf-8?q?but_is_not?=",
    ],
)
def test_a_long_or_oddly_spaced_ascii_subject_is_folded_within_78_and_reads_back_unchanged(subject: str) -> None:
    raw = compose_email(notification(subject), sender="safeguard@localhost", at=AT)
    head = raw.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert str(mailbox.parse(raw)["Subject"]) == subject


@pytest.mark.parametrize(
    ("address", "subject"),
    [("lead@example.org\r\nBcc: someone@example.org", "Subject"), ("lead@example.org", "Hi\nBcc: x@example.org")],
)
def test_a_line_break_in_a_header_value_fails_the_delivery_for_good_and_adds_no_header(
    address: str, subject: str
) -> None:
    delivery = notification(subject)
    with pytest.raises(DeliveryFailed) as failed:
        compose_email(Delivery("n-1", address, delivery.message), sender="safeguard@localhost", at=AT)
    assert not failed.value.retryable and "lead@example.org" not in str(failed.value)


def test_an_address_that_is_not_ascii_fails_the_delivery_for_good() -> None:
    delivery = notification()
    with pytest.raises(DeliveryFailed) as failed:
        compose_email(Delivery("n-1", "élève@example.org", delivery.message), sender="safeguard@localhost", at=AT)
    assert not failed.value.retryable


async def test_the_file_sink_keeps_one_private_file_per_notification_and_a_resend_replaces_it(tmp_path: Path) -> None:
    folder = tmp_path / "mail" / "new"  # created on first use
    sink = EmailFileSink(str(folder))

    first = await sink.send(notification(body="first"))
    again = await sink.send(notification(body="second"))

    assert first == again == "<n-1@safeguard.local>"
    assert [path.name for path in folder.iterdir()] == ["n-1.eml"], "no temporary file left beside it"
    kept = folder / "n-1.eml"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert mailbox.plain_text(mailbox.read(kept)).startswith("second")


def test_a_temporary_file_left_by_an_earlier_process_does_not_stop_the_next_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailbox, "_drafts", itertools.count(7))
    stale = tmp_path / f".n-2.{os.getpid()}.7.tmp"  # an earlier process with this id, cut off mid-write
    stale.write_bytes(b"half a mess")

    kept = mailbox.keep(tmp_path, b"Subject: whole\r\n\r\nbody\r\n", name="n-2")

    assert kept.read_bytes() == b"Subject: whole\r\n\r\nbody\r\n"
    assert stale.read_bytes() == b"half a mess", "nothing written through another's file"
    assert sorted(path.name for path in tmp_path.iterdir()) == [stale.name, "n-2.eml"]


def test_a_message_that_cannot_be_written_leaves_neither_a_file_nor_a_draft(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        mailbox.keep(tmp_path, "not bytes", name="n-3")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
