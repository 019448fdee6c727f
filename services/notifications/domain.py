"""What a notification says: pure rendering that keeps names and concern text off lock screens.

Every message is built from a template by kind, and a template can only use three facts: the urgency
words, the reference and the link. A recipient's name, a learner's name, what happened, a phone number
or an address are not among them, so no template (ours or a policy's) can put one on a lock screen.

The kind is recognised from the request's own fields:
- `parent`: the recipient's role is a parent or carer: the words are the school's own, from its policy file,
  carried by the request (`notification.requested` v2 `parent_message`; see shared/contracts/parent_message.py);
- `policy_review`: routing's policy-review reminder (reason `policy_review_due`, reference naming the policy and date);
- `operations`: an operational alert, not a case (reason `ops: ...`, e.g. a dead-lettered message);
- `quarantine`: reports intake could not accept (reason `ops: reports quarantined ...`): a count, never content;
- `break_glass`: someone opened a case outside their need to know (reason `ops: break glass`): who, which
  reference, when; never the case's content or the reason they gave (that is in the audit record);
- `debrief_action`: routing's reminder of a debrief action still open (reason `debrief_action_due`);
- `unacknowledged`: the standing alert once the escalation ladder has run out (reason `unacknowledged: ...`);
- `escalation`: `escalation_rung` above 0;
- `case_reminder`: a case deadline reminder (reason `reminder: ...`);
- `case`: everything else.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.contracts.case_events import DEBRIEF_ACTION_DUE
from shared.contracts.concern import PersonRole
from shared.contracts.events import POLICY_REVIEW_DUE, NotificationRequestedPayload, NotificationRequestedPayloadV2

MessageKind = Literal[
    "case",
    "escalation",
    "case_reminder",
    "policy_review",
    "debrief_action",
    "parent",
    "unacknowledged",
    "operations",
    "quarantine",
    "break_glass",
]
PARENT_ROLES = frozenset({PersonRole.parent_carer.value})
ALLOWED_FIELDS = frozenset({"urgency_words", "reference", "link"})

_URGENCY_WORDS = {
    "immediate": "URGENT safeguarding concern",
    "high": "High-priority safeguarding concern",
    "medium": "Safeguarding concern",
    "low": "Safeguarding concern (low priority)",
}


STAFF_FOOTER = "This message leaves out names and details on purpose: sign in to Safeguard to read the case."


@dataclass(frozen=True)
class MessageTemplate:
    """One kind's words per channel; `{urgency_words}`, `{reference}` and `{link}` are the only fields."""

    title: str
    body: str
    action: str
    sms: str
    footer: str = STAFF_FOOTER
    with_link: bool = True

    def fields(self) -> set[str]:
        """The placeholders the template uses."""
        parts = (self.title, self.body, self.action, self.sms, self.footer)
        return {name for part in parts for _, name, _, _ in string.Formatter().parse(part) if name}


DEFAULT_TEMPLATES: Mapping[str, MessageTemplate] = {
    "case": MessageTemplate(
        title="{urgency_words}: {reference}",
        body="A concern needs your attention (reference {reference}). "
        "Sign in to the Safeguard console to read it and acknowledge.",
        action="Acknowledge that you have seen it",
        sms="{urgency_words}: {reference} {link}",
    ),
    "escalation": MessageTemplate(
        title="{urgency_words}: {reference} (escalated)",
        body="A concern needs your attention (reference {reference}). It has been escalated to you because "
        "nobody acknowledged it in time. Sign in to the Safeguard console to read it and acknowledge.",
        action="Acknowledge that you have seen it",
        sms="ESCALATED {urgency_words}: {reference} {link}",
    ),
    "case_reminder": MessageTemplate(
        title="Safeguarding reminder: {reference}",
        body="A deadline on case {reference} has come. Sign in to the Safeguard console to see what is due.",
        action="Acknowledge the reminder",
        sms="Safeguarding reminder: {reference} {link}",
    ),
    "policy_review": MessageTemplate(
        title="Policy review due: {reference}",
        body="The school's safeguarding policy ({reference}) has reached its review date. "
        "Sign in to Safeguard to review it and adopt the next version.",
        action="Confirm you have seen this reminder",
        sms="Policy review due: {reference} {link}",
    ),
    "debrief_action": MessageTemplate(
        title="Debrief action due: {reference}",
        body="An action you own from the debrief of case {reference} is due and not yet marked done. "
        "Sign in to Safeguard to see it and mark it done; this reminder repeats until you do.",
        action="Confirm you have seen this reminder",
        sms="Debrief action due: {reference} {link}",
    ),
    "unacknowledged": MessageTemplate(
        title="{urgency_words}: {reference} STILL NOT ACKNOWLEDGED",
        body="Nobody has acknowledged concern {reference}, although everyone on the escalation ladder has been "
        "told. This alert repeats until someone does. Sign in to the Safeguard console to read it and acknowledge.",
        action="Acknowledge that you have seen it",
        sms="NOT ACKNOWLEDGED {urgency_words}: {reference} {link}",
    ),
    "operations": MessageTemplate(
        title="Safeguard needs attention: {reference}",
        body="Safeguard set aside {reference} because it could not be processed. Nothing is lost, but a person "
        "has to look at it: ask your Safeguard administrator to check the dead letters.",
        action="Confirm you have seen this",
        sms="Safeguard needs attention: {reference} {link}",
        footer="This message carries no case detail.",
    ),
    "quarantine": MessageTemplate(
        title="A report could not be accepted: {reference}",
        body="Safeguard received a report it could not accept as given ({reference}). It is kept, unread, in "
        "quarantine: a person has to look at it in case it is a real concern. Sign in to Safeguard to review it.",
        action="Confirm you will look at it",
        sms="A report is in quarantine: {reference} {link}",
        footer="This message carries no report content.",
    ),
    "break_glass": MessageTemplate(
        title="Break-glass access: {reference}",
        body="A case was opened outside the opener's usual need to know ({reference}). They stated a reason, "
        "which is in the school's audit record: sign in to Safeguard to review the access.",
        action="Confirm you will review it",
        sms="Break-glass access: {reference} {link}",
        footer="This message carries no case detail.",
    ),
}


@dataclass(frozen=True)
class RenderedNotification:
    """The words sent: a lock-screen-safe title and body, and where to acknowledge and open the case."""

    title: str
    body: str
    ack_url: str
    urgency: str = "medium"
    action: str = "Acknowledge that you have seen it"
    sms: str = ""
    footer: str = STAFF_FOOTER
    with_link: bool = True
    receipt_url: str = ""
    receipt_token: str = ""
    subject: str = ""
    """The email's subject when it differs from the push title (a parent's message); else the title."""
    email_body: str = ""
    """The email's text when it differs from the push body (a parent's message); else the body."""


class NoParentWords(ValueError):
    """A message to a parent or carer without the school's words: nothing is made up in their place."""


def message_kind(request: NotificationRequestedPayload) -> MessageKind:
    """Which template a request gets, from the fields it already carries (see the module docstring)."""
    if request.recipient.role in PARENT_ROLES:
        return "parent"
    if request.reason.startswith("ops: reports quarantined"):
        return "quarantine"
    if request.reason.startswith("ops: break glass"):
        return "break_glass"
    if request.reason.startswith("ops:"):
        return "operations"
    if request.reason == POLICY_REVIEW_DUE or request.reason.startswith("policy review"):
        return "policy_review"
    if request.reason == DEBRIEF_ACTION_DUE:
        return "debrief_action"
    if request.reason.startswith("unacknowledged"):
        return "unacknowledged"
    if request.escalation_rung:
        return "escalation"
    if request.reason.startswith("reminder:"):
        return "case_reminder"
    return "case"


def parent_message(request: NotificationRequestedPayload) -> RenderedNotification:
    """A parent's message in the school's own words (its policy file): school name, reference and contact only."""
    words = request.parent_message if isinstance(request, NotificationRequestedPayloadV2) else None
    if words is None:
        raise NoParentWords(f"notification {request.notification_id} to a parent carries no words from the policy")
    texts = words.rendered(reference=request.reference)
    return RenderedNotification(
        title=texts["push_title"],
        body=texts["push_body"],
        ack_url="",
        urgency=request.urgency,
        action="",
        sms=texts["sms"],
        footer="",
        with_link=False,
        subject=texts["email_subject"],
        email_body=texts["email_body"],
    )


def check_templates(templates: Mapping[str, MessageTemplate]) -> None:
    """Refuse a template set that misses a kind or reaches for a field other than urgency, reference and link."""
    missing = set(DEFAULT_TEMPLATES) - set(templates)  # parents' words come from the policy, not from here
    if missing:
        raise ValueError(f"templates missing for: {', '.join(sorted(missing))}")
    for kind, template in templates.items():
        extra = template.fields() - ALLOWED_FIELDS
        if extra:
            raise ValueError(f"template {kind!r} uses {sorted(extra)}; only {sorted(ALLOWED_FIELDS)} are allowed")


def ack_url(console_url: str, *, notification_id: str, ack_token: str) -> str:
    return f"{console_url.rstrip('/')}/api/v1/notifications/{notification_id}/ack?token={ack_token}"


def short_url(console_url: str, *, notification_id: str, ack_token: str) -> str:
    """The same link in fewer characters, so an SMS stays one segment."""
    return f"{console_url.rstrip('/')}/n/{notification_id}?t={ack_token}"


_SMS_URGENCY = {"immediate": "URGENT safeguarding", "high": "Priority safeguarding", "medium": "Safeguarding"}
SMS_SEGMENT = 160


def fit_sms(text: str, *, reference: str, link: str, urgency: str) -> str:
    """The template's SMS when it fits one segment, else shorter wording that keeps reference and link."""
    shorter = f"{_SMS_URGENCY.get(urgency, 'Safeguarding')} {reference} {link}"
    return next((t for t in (text, shorter) if len(t) <= SMS_SEGMENT), f"{reference} {link}")


def render(
    request: NotificationRequestedPayload,
    *,
    console_url: str,
    ack_token: str,
    receipt_token: str = "",
    templates: Mapping[str, MessageTemplate] = DEFAULT_TEMPLATES,
) -> RenderedNotification:
    """Lock-screen-safe text: urgency, reference and a link; never a name or what happened."""
    kind = message_kind(request)
    if kind == "parent":
        return parent_message(request)
    template = templates[kind]
    long_link = ack_url(console_url, notification_id=request.notification_id, ack_token=ack_token)
    facts = {"urgency_words": _URGENCY_WORDS[request.urgency], "reference": request.reference}
    link = short_url(console_url, notification_id=request.notification_id, ack_token=ack_token)
    sms = fit_sms(
        template.sms.format(**facts, link=link), reference=request.reference, link=link, urgency=request.urgency
    )
    return RenderedNotification(
        title=template.title.format(**facts, link=long_link),
        body=template.body.format(**facts, link=long_link),
        ack_url=long_link,
        urgency=request.urgency,
        action=template.action.format(**facts, link=long_link),
        sms=sms,
        footer=template.footer.format(**facts, link=long_link),
        with_link=template.with_link,
        receipt_url=f"{console_url.rstrip('/')}/api/v1/push/receipts" if receipt_token else "",
        receipt_token=receipt_token,
    )
