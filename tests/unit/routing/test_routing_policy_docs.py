"""The example concerns in docs/policy-format.md are valid and are decided as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from services.routing.policy import Policy, decide
from shared.contracts.concern import ConcernReceivedPayload

DOC = Path(__file__).resolve().parents[3] / "docs" / "policy-format.md"

# What the page says happens to each example under St Mark's policy.
SAID = {
    "web_form": ("online_bullying", "medium", {"pastoral_lead", "designated_safeguarding_lead"}, "inform"),
    "json_api": ("allegation_against_staff", "high", {"designated_safeguarding_lead", "headteacher"}, "must_not_tell"),
    "email": ("unsure_seek_advice", "high", {"designated_safeguarding_lead"}, "dsl_decides"),
    "webhook": (
        "child_protection",
        "immediate",
        {"designated_safeguarding_lead", "deputy_designated_safeguarding_lead"},
        "must_not_tell",
    ),
}


def examples() -> list[ConcernReceivedPayload]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [ConcernReceivedPayload.model_validate(json.loads(block)) for block in blocks]


def test_there_is_one_example_per_intake_channel() -> None:
    assert sorted(c.channel.value for c in examples()) == sorted(SAID)


def test_each_example_is_decided_as_the_page_says(st_marks: Policy) -> None:
    for concern in examples():
        decision = decide(concern, st_marks)
        category, urgency, notify, parents = SAID[concern.channel.value]
        assert decision.category == category, concern.channel
        assert decision.urgency == urgency, concern.channel
        assert set(decision.notify_roles) == notify, concern.channel
        assert decision.parent_notification.decision == parents, concern.channel
