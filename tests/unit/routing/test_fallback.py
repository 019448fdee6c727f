"""A notification failed for good: the person's next channel, one at a time, then escalate at once."""

from __future__ import annotations

import pytest

from services.routing.domain import notification_id_for
from services.routing.fallback import Fallback, next_channel
from services.routing.policy.decision import Recipient
from services.routing.policy.model import ContactChannels

EVERY_WAY = ContactChannels(email="dsl@example.org", phone="+44 7700 900123", push=True)


def recipient(channels: ContactChannels = EVERY_WAY) -> Recipient:
    return Recipient(person_id="p-dsl", name="Mx Example", role="designated_safeguarding_lead", channels=channels)


def failed(*channels: str, rung: int = 0) -> set[str]:
    return {notification_id_for("case-1", rung=rung, person_id="p-dsl", channel=c) for c in channels}


@pytest.mark.parametrize(
    ("urgency", "channels", "dead", "expected"),
    [
        # urgent: push, email and SMS all asked for at once; only when all three failed is the person unreachable
        ("immediate", EVERY_WAY, ("push",), Fallback("wait")),
        ("immediate", EVERY_WAY, ("push", "email"), Fallback("wait")),
        ("immediate", EVERY_WAY, ("push", "email", "sms"), Fallback("unreachable")),
        # medium: push and email asked for; SMS is the fallback once both failed
        ("medium", EVERY_WAY, ("push",), Fallback("wait")),
        ("medium", EVERY_WAY, ("push", "email"), Fallback("try", "sms")),
        ("medium", EVERY_WAY, ("push", "email", "sms"), Fallback("unreachable")),
        # email only on file: nothing else to try
        ("medium", ContactChannels(email="dsl@example.org"), ("email",), Fallback("unreachable")),
    ],
)
def test_the_next_step_after_a_failure(
    urgency: str, channels: ContactChannels, dead: tuple[str, ...], expected: Fallback
) -> None:
    step = next_channel(recipient(channels), urgency=urgency, case_id="case-1", rung=0, failed_ids=failed(*dead))
    assert step == expected


def test_failures_at_another_rung_do_not_count() -> None:
    step = next_channel(
        recipient(), urgency="immediate", case_id="case-1", rung=1, failed_ids=failed("push", "email", "sms", rung=0)
    )
    assert step == Fallback("wait")
