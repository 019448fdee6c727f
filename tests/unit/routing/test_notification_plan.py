"""Which channels, when: from the policy's notification plan, with quiet hours for non-urgent messages only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.routing.domain import channels_for
from services.routing.policy.decision import Recipient
from services.routing.policy.load import load_policy
from services.routing.policy.model import ContactChannels
from services.routing.policy.notifying import NotificationPlan
from tests.conftest import REPO_ROOT

ST_MARKS = load_policy(REPO_ROOT / "deploy" / "policies" / "st-marks.yaml")
PLAN = ST_MARKS.notifications


def person(**contact: object) -> Recipient:
    everything: dict[str, object] = {"email": "lead@example.org", "phone": "+44 7700 900123", "push": True}
    channels = ContactChannels.model_validate(everything | contact)
    return Recipient(person_id="p-1", name="Mx Example", role="designated_safeguarding_lead", channels=channels)


@pytest.mark.parametrize(
    ("urgency", "contact", "channels"),
    [
        ("immediate", {}, ["push", "sms", "email"]),
        ("high", {}, ["push", "sms", "email"]),
        ("medium", {}, ["push", "email"]),
        ("low", {}, ["email"]),
        # a person's own choice counts where the policy allows it (medium and low at St Mark's) ...
        ("low", {"prefer": ["push"]}, ["push"]),
        ("medium", {"prefer": ["sms"]}, ["sms"]),
        # ... and never for urgent messages
        ("immediate", {"prefer": ["email"]}, ["push", "sms", "email"]),
        # someone with none of the wanted channels is still told, on the first they have
        ("low", {"email": None}, ["push"]),
        ("immediate", {"email": None, "push": False}, ["sms"]),
    ],
)
def test_the_channels_for_an_urgency(urgency: str, contact: dict[str, object], channels: list[str]) -> None:
    assert [channel for channel, _ in channels_for(person(**contact), urgency=urgency, plan=PLAN)] == channels


LONDON_SUMMER = "Europe/London"  # BST: 21:00 local is 20:00 UTC


@pytest.mark.parametrize(
    ("now", "urgency", "until"),
    [
        (datetime(2026, 6, 10, 20, 30, tzinfo=UTC), "medium", datetime(2026, 6, 11, 6, 0, tzinfo=UTC)),
        (datetime(2026, 6, 10, 2, 0, tzinfo=UTC), "low", datetime(2026, 6, 10, 6, 0, tzinfo=UTC)),
        (datetime(2026, 6, 10, 12, 0, tzinfo=UTC), "medium", None),  # the middle of the day
        (datetime(2026, 6, 10, 20, 30, tzinfo=UTC), "high", None),  # urgent: never held
        (datetime(2026, 6, 10, 20, 30, tzinfo=UTC), "immediate", None),
    ],
)
def test_quiet_hours_hold_only_non_urgent_messages(now: datetime, urgency: str, until: datetime | None) -> None:
    assert PLAN.quiet_until(now, urgency=urgency, timezone=LONDON_SUMMER) == until


def test_a_daytime_quiet_period_also_works() -> None:
    plan = NotificationPlan.model_validate({"quiet_hours": {"starts": "12:00", "ends": "13:00"}})
    lunch = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)  # GMT: local is UTC
    assert plan.quiet_until(lunch, urgency="low", timezone="Europe/London") == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("plan", "complaint"),
    [
        ({"personal_choice": ["immediate"]}, "personal_choice cannot cover ['immediate']"),
        ({"channels": {"immediate": [], "high": ["sms"], "medium": ["email"], "low": ["email"]}}, "at least one"),
        ({"quiet_hours": {"starts": "21:00", "ends": "21:00"}}, "different times"),
        ({"channels": {"immediate": ["pigeon"]}}, "pigeon"),
    ],
)
def test_a_plan_the_policy_check_refuses(plan: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        NotificationPlan.model_validate(plan)


def test_a_persons_own_quiet_hours_replace_the_schools_for_them_and_never_hold_urgent() -> None:
    own = ContactChannels.model_validate(
        {"email": "lead@example.org", "quiet_hours": {"starts": "18:00", "ends": "08:00"}}
    ).quiet_hours
    evening = datetime(2026, 6, 10, 18, 30, tzinfo=UTC)  # 19:30 in London: the school's quiet hours start at 21:00
    assert PLAN.quiet_until(evening, urgency="medium", timezone=LONDON_SUMMER) is None
    assert PLAN.quiet_until(evening, urgency="medium", timezone=LONDON_SUMMER, own=own) == datetime(
        2026, 6, 11, 7, 0, tzinfo=UTC
    )
    assert PLAN.quiet_until(evening, urgency="immediate", timezone=LONDON_SUMMER, own=own) is None
    # Quiet hours the school does not have still apply to the person who chose them.
    assert NotificationPlan().quiet_until(evening, urgency="low", timezone=LONDON_SUMMER, own=own) is not None
