"""Every message kind on every channel: the words say urgency, reference and link, and nothing personal.

Parents' words come from each school's policy file: for every policy under deploy/policies and every channel,
a parent's message is rendered with a marker in every staff-only field (the recipient's name, the reason,
the case, every name, kind, category and rule in the policy) and no marker may reach the parent.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.notifications import mailbox
from services.notifications.channels import Delivery
from services.notifications.channels.email import compose_email
from services.notifications.channels.push import push_payload
from services.notifications.channels.sms import one_segment
from services.notifications.domain import (
    DEFAULT_TEMPLATES,
    MessageTemplate,
    NoParentWords,
    check_templates,
    message_kind,
    render,
)
from services.notifications.links import AckLinks
from services.routing.policy.load import load_policy
from services.routing.policy.model import Policy
from shared.contracts.events import NotificationRequestedPayload, NotificationRequestedPayloadV2, PersonRef
from shared.contracts.parent_message import ParentMessage
from tests.conftest import REPO_ROOT

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
    "unacknowledged": {"reason": "unacknowledged: the ladder ran out (rung 2)"},
    "operations": {"reference": "1 set aside by routing-concerns since 14:00 UTC", "reason": "ops: dead letters"},
    "quarantine": {"reference": "2 reports since 14:00 UTC", "reason": "ops: reports quarantined (2)"},
    "parent": {"role": "parent_carer", "reason": "parents: inform"},
    # Who broke glass on which reference, and when: never the case's content or the reason they stated.
    "break_glass": {"reference": "SG-2026-ABCDEFGH opened by d-hill at 09:00 UTC", "reason": "ops: break glass"},
}
POLICIES = sorted((REPO_ROOT / "deploy" / "policies").glob("*.yaml"))
ST_MARKS = load_policy(REPO_ROOT / "deploy" / "policies" / "st-marks.yaml")
CHANNELS = ["push", "email", "sms", "log"]


def test_the_table_covers_every_kind_of_message() -> None:
    assert set(KINDS) == set(DEFAULT_TEMPLATES) | {"parent"}


def request_of(
    kind: str, *, channel: str, urgency: str = "immediate", parent_words: ParentMessage | None = None
) -> NotificationRequestedPayloadV2:
    fields = {"reference": "SG-2026-ABCDEFGH", "urgency": urgency, "role": "designated_safeguarding_lead"}
    fields.update(KINDS[kind])
    return NotificationRequestedPayloadV2(
        notification_id="0f6a2c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b",
        case_id="case-1",
        reference=fields["reference"],
        recipient=PersonRef(person_id="p-person", name=RECIPIENT_NAME, role=fields["role"]),
        channel=channel,  # type: ignore[arg-type]
        address=ADDRESSES[channel],
        urgency=fields["urgency"],
        reason=fields["reason"],
        escalation_rung=fields.get("escalation_rung", 0),
        parent_message=(parent_words or ST_MARKS.parent_message()) if kind == "parent" else None,
    )


def sent_text(request: NotificationRequestedPayload) -> str:
    """Everything the channel would put in front of the recipient (and their lock screen)."""
    token = AckLinks(b"k" * 32).token(request.notification_id, person_id=request.recipient.person_id, now=NOW)
    receipt = AckLinks(b"k" * 32).receipt_token(request.notification_id)
    message = render(request, console_url=CONSOLE, ack_token=token, receipt_token=receipt)
    delivery = Delivery(request.notification_id, request.address, message)
    if request.channel == "push":
        return json.dumps(json.loads(push_payload(delivery)))
    if request.channel == "sms":
        assert one_segment(message.sms), message.sms
        return message.sms
    if request.channel == "email":
        email = mailbox.parse(compose_email(delivery, sender="Safeguard <safeguard@example.org>", at=NOW))
        parts = [email.get_body(preferencelist=(kind,)) for kind in ("plain", "html")]
        return " ".join([str(email["Subject"]), *(p.get_content() for p in parts if p is not None)])  # type: ignore[attr-defined]
    return f"{message.title} {message.body}"


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_no_message_carries_a_name_what_happened_or_contact_details(kind: str, channel: str) -> None:
    request = request_of(kind, channel=channel)
    assert message_kind(request) == kind
    text = sent_text(request)
    for secret in NEVER:
        assert secret.lower() not in text.lower(), f"{kind}/{channel} leaks {secret!r}: {text}"
    assert request.reference in text


def marked(policy: Policy) -> Policy:
    """The policy with a marker in every staff-only text a template might try to reach."""
    document = policy.model_dump(mode="json")
    for number, person in enumerate(document["people"]):
        person["name"] = f"STAFFMARK-person-{number}"
        person["aliases"] = [f"STAFFMARK-alias-{number}"]
    for number, kind in enumerate(document["kinds"]):
        kind["label"] = f"STAFFMARK-kind-{number}"
    for number, rule in enumerate(document["rules"]):
        rule["title"] = f"STAFFMARK-rule-{number}"
        if rule["then"].get("category"):
            rule["then"]["category"] = f"staffmark_category_{number}"
        if rule["then"].get("parents_reason"):
            rule["then"]["parents_reason"] = f"STAFFMARK-parents-reason-{number}"
    document["fallback"]["guidance"] = "STAFFMARK-guidance"
    return Policy.model_validate(document, context={"bank_holidays": policy.calendar.bank_holidays})


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("path", POLICIES, ids=[p.stem for p in POLICIES])
def test_no_staff_only_detail_reaches_a_parent_from_any_policys_template(path: Path, channel: str) -> None:
    policy = marked(load_policy(path))
    words = policy.parent_message()
    assert words is not None, f"{path.name} gives no words for parents"
    request = request_of("parent", channel=channel, parent_words=words)
    request = request.model_copy(
        update={
            "recipient": PersonRef(person_id="p-parent", name="STAFFMARK-recipient", role="parent_carer"),
            "reason": "STAFFMARK-reason rule STAFFMARK-rule-0",
            "case_id": "STAFFMARK-case",
        }
    )
    text = sent_text(request)
    assert "STAFFMARK" not in text.upper(), f"{path.name}/{channel}: {text}"
    for staff_only in ("safeguarding", "concern", "escalat", "lado", "designated", "acknowledge", "sign in", "/ack"):
        assert staff_only not in text.lower(), f"{path.name}/{channel}: {staff_only!r} in {text}"
    assert request.reference in text and policy.school.name in text


def test_a_parent_request_without_the_schools_words_is_refused_not_made_up() -> None:
    request = request_of("parent", channel="email").model_copy(update={"parent_message": None})
    with pytest.raises(NoParentWords):
        render(request, console_url=CONSOLE, ack_token="t0k3n.AbCdEfGhIjKlMnOpQrStUv")


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
    nosy["case"] = MessageTemplate(title="Dear {recipient_name}", body="{reference}", action="OK", sms="{link}")
    with pytest.raises(ValueError, match="recipient_name"):
        check_templates(nosy)
    with pytest.raises(ValueError, match="missing"):
        check_templates({"case": DEFAULT_TEMPLATES["case"]})
