"""Every message kind on every channel: the words say urgency, reference and link, and nothing personal."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifications.channels import Delivery
from services.notifications.channels.email import compose_email
from services.notifications.channels.push import push_payload
from services.notifications.channels.sms import one_segment
from services.notifications.domain import (
    DEFAULT_TEMPLATES,
    MessageTemplate,
    check_templates,
    message_kind,
    render,
)
from services.notifications.links import AckLinks
from shared.contracts.events import NotificationRequestedPayload, PersonRef

CONSOLE = "https://safeguard.st-marks.example.org"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RECIPIENT_NAME = "Mrs Example Recipient"
ADDRESSES = {"email": "recipient@st-marks.example.org", "sms": "+44 7700 900555", "push": "p-person", "log": "p-person"}
# Things that must never reach a message: names, what happened (routing puts no concern text in a request,
# but a reminder's reason may carry a description), contact details.
NEVER = ["Example Recipient", "Learner A", "hurtful", "group chat", "7700", "900555", "recipient@"]

# kind -> the request fields that make routing's request that kind
KINDS: dict[str, dict[str, Any]] = {
    "case": {"reason": "rule learner-online-bullying"},
    "escalation": {"reason": "escalation rung 1", "escalation_rung": 1},
    "case_reminder": {"reason": "reminder: call Learner A's parent about the hurtful group chat"},
    "policy_review": {"reference": "policy v3", "reason": "policy review was due on 2026-03-01", "urgency": "medium"},
    "debrief_action": {"reason": "debrief_action_due", "urgency": "medium"},
    "parent": {"role": "parent_carer", "reason": "parents: inform"},
    # Who broke glass on which reference, and when: never the case's content or the reason they stated.
    "break_glass": {"reference": "SG-2026-ABCDEFGH opened by d-hill at 09:00 UTC", "reason": "ops: break glass"},
}


def request_of(kind: str, *, channel: str, urgency: str = "immediate") -> NotificationRequestedPayload:
    fields = {"reference": "SG-2026-ABCDEFGH", "urgency": urgency, "role": "designated_safeguarding_lead"}
    fields.update(KINDS[kind])
    return NotificationRequestedPayload(
        notification_id="0f6a2c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b",
        case_id="case-1",
        reference=fields["reference"],
        recipient=PersonRef(person_id="p-person", name=RECIPIENT_NAME, role=fields["role"]),
        channel=channel,  # type: ignore[arg-type]
        address=ADDRESSES[channel],
        urgency=fields["urgency"],
        reason=fields["reason"],
        escalation_rung=fields.get("escalation_rung", 0),
    )


def sent_text(request: NotificationRequestedPayload) -> str:
    """Everything the channel would put in front of the recipient (and their lock screen)."""
    token = AckLinks(b"k" * 32).token(request.notification_id, person_id=request.recipient.person_id, now=NOW)
    message = render(request, console_url=CONSOLE, ack_token=token)
    delivery = Delivery(request.notification_id, request.address, message)
    if request.channel == "push":
        return json.dumps(json.loads(push_payload(delivery)))
    if request.channel == "sms":
        assert one_segment(message.sms), message.sms
        return message.sms
    if request.channel == "email":
        email = compose_email(delivery, sender="Safeguard <safeguard@example.org>", at=NOW)
        parts = [email.get_body(preferencelist=(kind,)) for kind in ("plain", "html")]
        return " ".join([str(email["Subject"]), *(p.get_content() for p in parts if p is not None)])  # type: ignore[attr-defined]
    return f"{message.title} {message.body}"


@pytest.mark.parametrize("channel", ["push", "email", "sms", "log"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_no_message_carries_a_name_what_happened_or_contact_details(kind: str, channel: str) -> None:
    request = request_of(kind, channel=channel)
    assert message_kind(request) == kind
    text = sent_text(request)
    for secret in NEVER:
        assert secret.lower() not in text.lower(), f"{kind}/{channel} leaks {secret!r}: {text}"
    assert request.reference in text


@pytest.mark.parametrize("channel", ["push", "email", "sms", "log"])
def test_a_parent_message_carries_no_staff_only_words(channel: str) -> None:
    text = sent_text(request_of("parent", channel=channel)).lower()
    for staff_only in ("safeguarding", "concern", "escalat", "lado", "designated", "acknowledge", "sign in", "/ack"):
        assert staff_only not in text, f"{channel}: {staff_only!r} in {text}"


def test_the_policy_review_reminder_is_not_worded_as_a_concern() -> None:
    for channel in ("push", "email", "sms"):
        text = sent_text(request_of("policy_review", channel=channel))
        assert "policy review due" in text.lower() and "concern" not in text.lower()


def test_the_debrief_action_reminder_is_worded_as_a_reminder_to_mark_an_action_done() -> None:
    for channel in ("push", "email", "sms"):
        text = sent_text(request_of("debrief_action", channel=channel)).lower()
        assert "debrief action due" in text and "concern" not in text and "acknowledge that" not in text


@pytest.mark.parametrize("urgency", ["immediate", "high", "medium", "low"])
def test_every_staff_sms_keeps_its_link_within_one_segment(urgency: str) -> None:
    for kind in ("case", "escalation", "case_reminder", "policy_review", "debrief_action"):
        sms = sent_text(request_of(kind, channel="sms", urgency=urgency))
        assert re.search(rf"{CONSOLE}/n/[0-9a-f-]{{36}}\?t=\S+$", sms), sms


def test_a_template_may_use_only_urgency_reference_and_link() -> None:
    check_templates(DEFAULT_TEMPLATES)
    nosy = dict(DEFAULT_TEMPLATES)
    nosy["parent"] = MessageTemplate(title="Dear {recipient_name}", body="{reference}", action="OK", sms="{link}")
    with pytest.raises(ValueError, match="recipient_name"):
        check_templates(nosy)
    with pytest.raises(ValueError, match="missing"):
        check_templates({"case": DEFAULT_TEMPLATES["case"]})
