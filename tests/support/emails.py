"""Synthetic emails shaped like the ones schools receive: every common structure, charset and defect."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RECIPIENT = "report@st-marks.example.org"
CHARSETS = ("iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "gb2312", "iso-8859-15", "utf-16")
# Words each charset can carry, so the marker proves the text was decoded, not just passed through.
WORDS = {
    "iso-8859-1": "Ça m'inquiète beaucoup",
    "windows-1252": "“Quoted” – worrying",
    "koi8-r": "Меня беспокоит",
    "shift_jis": "心配しています",
    "gb2312": "我很担心",
    "iso-8859-15": "Soucis: 5 €",
    "utf-16": "Sorgen über Chat",
}


@dataclass(frozen=True)
class SampleEmail:
    shape: str
    raw: bytes
    expected: str  # "concern", "quarantine" or "automated"
    marker: str | None = None  # text the concern's details must contain


def _base(rng: random.Random, *, subject: str, sender: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender or f"Parent {rng.randint(1, 999)} <parent{rng.randint(1, 999)}@example.org>"
    message["To"] = RECIPIENT
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 3, rng.randint(1, 28), 9, 30, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="mail.example.org")
    return message


def _marker(rng: random.Random) -> str:
    return f"marker{rng.randrange(10**9):09d}"


def plain(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    message = _base(rng, subject="A message in a group chat")
    message.set_content(f"My child showed me messages. {marker}\n")
    return SampleEmail("plain", message.as_bytes(), "concern", marker)


def alternative(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    message = _base(rng, subject="Concern about a post")
    message.set_content(f"Plain version {marker}")
    message.add_alternative(f"<p>HTML version <b>{marker}</b></p>", subtype="html")
    return SampleEmail("multipart/alternative", message.as_bytes(), "concern", marker)


def html_only(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    message = _base(rng, subject="Screenshot of a comment")
    html = f"<html><head><style>p{{color:red}}</style><script>x()</script></head><body><p>Seen: {marker}</p></body>"
    message.set_content(html, subtype="html")
    return SampleEmail("html-only", message.as_bytes(), "concern", marker)


def encoded(rng: random.Random, *, cte: str) -> SampleEmail:
    charset = rng.choice(CHARSETS)
    marker = _marker(rng)
    text = f"{WORDS[charset]} {marker}"
    message = _base(rng, subject=f"Worried ({charset})")
    if charset == "utf-16":
        message.set_content(text.encode("utf-16"), maintype="text", subtype="plain", cte="base64")
        message.set_param("charset", "utf-16")
    else:
        message.set_content(text, charset=charset, cte=cte)
    return SampleEmail(f"{cte} {charset}", message.as_bytes(), "concern", WORDS[charset])


def inline_image(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    message = _base(rng, subject="Picture attached inline")
    message.set_content(f"See the picture. {marker}")
    cid = make_msgid(domain="mail.example.org")
    message.add_alternative(f'<p>{marker}<img src="cid:{cid[1:-1]}" alt="screenshot"></p>', subtype="html")
    html_part = message.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, maintype="image", subtype="png", cid=cid, filename="shot.png")
    return SampleEmail("inline image", message.as_bytes(), "concern", "shot.png")


def with_pdf(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    message = _base(rng, subject="Letter attached")
    message.set_content(f"Please see the attached letter. {marker}")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="letter.pdf")
    return SampleEmail("pdf attachment", message.as_bytes(), "concern", "letter.pdf")


def forwarded(rng: random.Random, *, as_eml_file: bool) -> SampleEmail:
    inner_marker = _marker(rng)
    inner = _base(rng, subject="the original message", sender="Someone <someone@example.net>")
    inner.set_content(f"Original words {inner_marker}")
    outer = _base(rng, subject="Fwd: the original message", sender="Teacher <teacher@st-marks.example.org>")
    outer.set_content("Forwarding as the policy asks (section 4.2).")
    if as_eml_file:
        outer.add_attachment(inner.as_bytes(), maintype="application", subtype="octet-stream", filename="orig.eml")
    else:
        outer.add_attachment(inner)
    return SampleEmail(
        "forwarded .eml" if as_eml_file else "forwarded rfc822", outer.as_bytes(), "concern", inner_marker
    )


def eight_bit_headers(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    raw = (
        "From: Zoë Ünal <zoe@example.org>\r\nTo: " + RECIPIENT + "\r\nSubject: Inquiétude – café\r\n"
        "Message-ID: <" + marker + "@mail.example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Très inquiète " + marker + "\r\n"
    ).encode()
    return SampleEmail("8-bit headers", raw, "concern", marker)


def malformed_headers(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    variants = [
        b"From: <<broken@@example.org\r\nSubject: =?utf-8?q?unterminated\r\n",
        b"From: Name With No Address\r\nSubject: =?x-unknown?b?!!!?=\r\nDate: not a date\r\n",
        b"From parent@example.org Mon Jan 1 00:00:00 2026\r\nFrom: p@example.org\r\nSubject: mbox line first\r\n",
        b'Subject: folded\r\n\tover lines\r\nFrom: p@example.org\r\nContent-Type: text/plain; charset="\r\n',
        b"Subject: odd\r\nFrom: p@example.org\r\nContent-Type: multipart/mixed\r\n",  # no boundary
    ]
    raw = rng.choice(variants) + b"To: " + RECIPIENT.encode() + b"\r\n\r\nWords " + marker.encode() + b"\r\n"
    return SampleEmail("malformed headers", raw, "concern", marker)


def unknown_charset(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    raw = (
        f"From: p@example.org\r\nTo: {RECIPIENT}\r\nSubject: odd charset\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nWords {marker} \xe9\r\n"
    ).encode("latin-1")
    return SampleEmail("unknown charset", raw, "concern", marker)


def with_nul(rng: random.Random) -> SampleEmail:
    marker = _marker(rng)
    raw = f"From: p@example.org\r\nTo: {RECIPIENT}\r\nSubject: nul inside\r\n\r\nbefore\x00after {marker}\r\n"
    return SampleEmail("NUL in body", raw.encode(), "concern", marker)


def auto_reply(rng: random.Random) -> SampleEmail:
    message = _base(rng, subject="Out of office")
    message["Auto-Submitted"] = rng.choice(["auto-replied", "auto-generated"])
    message.set_content("I am away until Monday.")
    return SampleEmail("auto-reply", message.as_bytes(), "automated")


def bulk(rng: random.Random) -> SampleEmail:
    message = _base(rng, subject="Newsletter")
    message["Precedence"] = rng.choice(["bulk", "junk", "list"])
    message.set_content("Our spring offers.")
    return SampleEmail("bulk", message.as_bytes(), "automated")


def loop(rng: random.Random) -> SampleEmail:
    message = _base(rng, subject="Safeguarding alert")
    message.replace_header("Message-ID", make_msgid(domain="safeguard.local"))
    message.set_content("A concern needs you.")
    return SampleEmail("our own message", message.as_bytes(), "automated")


def bounce(rng: random.Random) -> SampleEmail:
    message = _base(rng, subject="Undelivered Mail Returned to Sender", sender="MAILER-DAEMON@example.org")
    message.set_content("Delivery failed.")
    message.add_attachment("Reporting-MTA: dns; mail.example.org\n", subtype="delivery-status")
    message.replace_header("Content-Type", str(message["Content-Type"]).replace("mixed", "report"))
    return SampleEmail("bounce", message.as_bytes(), "automated")


def empty(rng: random.Random) -> SampleEmail:
    message_id = make_msgid(domain="mail.example.org")
    raw = f"From: p@example.org\r\nTo: {RECIPIENT}\r\nMessage-ID: {message_id}\r\n\r\n\r\n"
    return SampleEmail("no subject, no text", raw.encode(), "quarantine")


def not_an_email(rng: random.Random) -> SampleEmail:
    return SampleEmail("not an email", rng.randbytes(rng.randint(1, 300)).replace(b":", b"."), "quarantine")


SHAPES: tuple[Callable[[random.Random], SampleEmail], ...] = (
    plain,
    alternative,
    html_only,
    lambda rng: encoded(rng, cte="quoted-printable"),
    lambda rng: encoded(rng, cte="base64"),
    inline_image,
    with_pdf,
    lambda rng: forwarded(rng, as_eml_file=False),
    lambda rng: forwarded(rng, as_eml_file=True),
    eight_bit_headers,
    malformed_headers,
    unknown_charset,
    with_nul,
    auto_reply,
    bulk,
    loop,
    bounce,
    empty,
    not_an_email,
)


def sample_emails(count: int, *, seed: int = 20260301) -> Iterator[SampleEmail]:
    """`count` emails cycling through every shape, varied by a seeded generator."""
    rng = random.Random(seed)
    for number in range(count):
        yield SHAPES[number % len(SHAPES)](rng)
