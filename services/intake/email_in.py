"""Email-in: one RFC 5322 message becomes one concern, a quarantine with its reason, or is recognised as automated.

Pure: bytes in, a value out, nothing raised. An email concern goes to the DSL to triage (kind `not_sure`, risk
`not_answered`) unless its own words say otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from services.intake.door import escape_unstorable
from services.intake.html_text import html_to_text
from shared.contracts.concern import ConcernReport, Involvement, PersonInConcern, PersonRole, Reporter, RiskAnswer

MAX_FORWARD_DEPTH = 3
MAX_SUMMARY = 300
MAX_DETAILS = 20_000
UNTRIAGED_KIND = "not_sure"
# Words that say more than "triage this": the first kind whose words appear is the concern's kind.
KIND_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sexual_images", ("nude", "naked", "sexual image", "sexting", "explicit photo", "explicit picture")),
    ("grooming_or_exploitation", ("grooming", "groomed", "exploitation", "exploited")),
    ("online_bullying", ("bully", "bullied", "bullying")),
)
RISK_WORDS = ("immediate danger", "immediate risk", "in danger", "right now", "suicid", "self-harm", "self harm")
_HEADERS_OF_A_MESSAGE = ("from", "to", "subject", "date", "message-id")


@dataclass(frozen=True)
class Quarantine:
    """The input cannot become a concern; it is kept with this reason."""

    reason: str


@dataclass(frozen=True)
class Automated:
    """An auto-reply, bulk mail, a bounce or our own message come back: kept, never a concern."""

    reason: str


class AutomatedMessage(ValueError):
    """Raised by the email parse function for an automated message, so the use case can tell it from a quarantine."""


@dataclass(frozen=True)
class Content:
    sender_name: str
    sender_address: str
    subject: str
    text: str
    attachments: tuple[str, ...] = ()
    forwarded: tuple[Content, ...] = field(default=())


def read_email(raw: bytes, *, own_domains: frozenset[str] = frozenset()) -> ConcernReport | Quarantine | Automated:
    """What a raw email is: a concern, a quarantine with its reason, or an automated message."""
    if not raw.strip():
        return Quarantine("empty: no message at all")
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        if not any(message.get(name) is not None for name in _HEADERS_OF_A_MESSAGE):
            return Quarantine("not an email: no From, To, Subject, Date or Message-ID header")
        automated = automated_reason(message, own_domains=own_domains)
        if automated is not None:
            return Automated(automated)
        content = _content(message, depth=0)
        return _concern(content)
    except Exception as error:
        # The stdlib parser meets malformed input with assorted errors (HeaderParseError, LookupError,
        # RecursionError, ...); this function's contract is to name them as a quarantine, the bytes being kept.
        return Quarantine(f"unreadable email ({type(error).__name__})")


def automated_reason(message: Message, *, own_domains: frozenset[str]) -> str | None:
    """Why `message` is automated (RFC 3834 Auto-Submitted, Precedence, bounces, our own Message-ID), or None."""
    auto_submitted = _header(message, "auto-submitted").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"automated message (Auto-Submitted: {_token(auto_submitted)})"
    precedence = _header(message, "precedence").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"bulk or list mail (Precedence: {precedence})"
    if message.get("x-autoreply") is not None or message.get("x-autorespond") is not None:
        return "an auto-reply (X-Autoreply)"
    if message.get_content_type() == "multipart/report":
        return "a delivery report (bounce)"
    message_id = _header(message, "message-id").strip().strip("<>").lower()
    if "@" in message_id and message_id.rsplit("@", 1)[1] in own_domains:
        return "our own message came back (a mail loop)"
    return None


def email_parser(*, own_domains: frozenset[str]) -> Callable[[bytes], ConcernReport]:
    """A parse function for `Intake.receive`: a concern, else ValueError (AutomatedMessage for automated mail)."""

    def parse(raw: bytes) -> ConcernReport:
        outcome = read_email(raw, own_domains=own_domains)
        if isinstance(outcome, Automated):
            raise AutomatedMessage(outcome.reason)
        if isinstance(outcome, Quarantine):
            raise ValueError(outcome.reason)
        return outcome

    return parse


def recipients(raw: bytes) -> list[str]:
    """The addresses a raw message was delivered to, most specific first (Delivered-To, X-Original-To, To, Cc)."""
    message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    found: list[str] = []
    for name in ("delivered-to", "x-original-to", "to", "cc"):
        values = [str(value) for value in message.get_all(name) or []]
        found.extend(address.lower() for _, address in getaddresses(values) if "@" in address)
    return found


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return "" if value is None else str(value)


def _token(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]", "?", text[:40])


def _clean(text: str) -> str:
    return escape_unstorable(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sender(message: Message) -> tuple[str, str]:
    addresses = getattr(message.get("from"), "addresses", ())
    if not addresses:
        return "", ""
    return _clean(addresses[0].display_name or ""), _clean(addresses[0].addr_spec or "")


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    for charset in (part.get_content_charset() or "utf-8", "utf-8"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")  # the commonest mislabelled charset; never fails with replace


def _leaves(part: Message) -> Iterator[Message]:
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for sub in part.get_payload():  # type: ignore[union-attr]
            if isinstance(sub, Message):
                yield from _leaves(sub)
    else:
        yield part


def _forwarded_message(part: Message) -> Message | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        return first if isinstance(first, Message) else None
    if (part.get_filename() or "").lower().endswith(".eml"):
        data = part.get_payload(decode=True)
        return BytesParser(policy=policy.default).parsebytes(data) if isinstance(data, bytes) and data else None
    return None


def _describe(part: Message) -> str:
    data = part.get_payload(decode=True)
    size = len(data) if isinstance(data, bytes) else len(str(part.get_payload()))
    name = _clean(part.get_filename() or "(unnamed)")
    return f"{_clip(name, 120)} ({part.get_content_type()}, {size} bytes)"


def _content(message: Message, *, depth: int) -> Content:
    body = message.get_body(preferencelist=("plain", "html")) if isinstance(message, EmailMessage) else None
    texts: list[str] = []
    if body is not None:
        decoded = _decoded(body)
        texts.append(html_to_text(decoded) if body.get_content_subtype() == "html" else decoded)
    attachments: list[str] = []
    forwarded: list[Content] = []
    for leaf in _leaves(message):
        if leaf is body:
            continue
        inner = _forwarded_message(leaf) if depth < MAX_FORWARD_DEPTH else None
        if inner is not None:
            forwarded.append(_content(inner, depth=depth + 1))
        elif leaf.get_content_maintype() in ("text", "multipart") and not leaf.get_filename():
            if body is None:  # no body was chosen (an odd subtype, a multipart without boundary): its text counts
                texts.append(_decoded(leaf))
            # otherwise it is the body's other alternative (html beside plain)
        else:
            attachments.append(_describe(leaf))
    name, address = _sender(message)
    subject = _clean(" ".join(_header(message, "subject").split()))
    text = _clean("\n\n".join(t.strip() for t in texts if t.strip()))
    return Content(name, address, subject, text, tuple(attachments), tuple(forwarded))


def _details(content: Content) -> str:
    parts = [content.text] if content.text else []
    for inner in content.forwarded:
        sender = inner.sender_address or "an unknown sender"
        parts.append(f"--- Forwarded message from {sender}: {inner.subject or '(no subject)'} ---\n{_details(inner)}")
    if content.attachments:
        parts.append("Attachments: " + "; ".join(content.attachments))
    return "\n\n".join(parts)


def _concern(content: Content) -> ConcernReport | Quarantine:
    details = _details(content)
    first_line = next((line.strip() for line in details.splitlines() if line.strip()), "")
    if not content.subject and not details:
        return Quarantine("an email with no subject, text or attachments")
    words = f"{content.subject}\n{details}".casefold()
    kind = next((k for k, cues in KIND_WORDS if any(cue in words for cue in cues)), UNTRIAGED_KIND)
    at_risk = any(cue in words for cue in RISK_WORDS)
    anonymous = not (content.sender_address or content.sender_name)
    reporter = Reporter(
        anonymous=anonymous,
        role=None if anonymous else PersonRole.unknown,
        name=_clip(content.sender_name, 200) or None,
        contact=_clip(content.sender_address, 320) or None,
    )
    return ConcernReport(
        reporter=reporter,
        people=[PersonInConcern(role=PersonRole.unknown, involvement=Involvement.subject)],
        kind=kind,
        summary=_clip(content.subject or first_line, MAX_SUMMARY),
        details=_clip(details, MAX_DETAILS),
        # An email that does not say is "not answered", never "no".
        immediate_risk=RiskAnswer.yes if at_risk else RiskAnswer.not_answered,
    )
