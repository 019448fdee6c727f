"""A receipt's stage, from the case events: forward only, a reopened case handled again."""

from __future__ import annotations

import pytest

from services.intake.receipts import stage_after


@pytest.mark.parametrize(
    ("current", "event_type", "after"),
    [
        ("received", "case.opened", "received"),
        ("received", "case.triaged", "received"),
        ("received", "case.acknowledged", "seen"),
        ("received", "case.action_recorded", "being_handled"),
        ("being_handled", "case.acknowledged", "being_handled"),  # never backwards
        ("seen", "case.decision_recorded", "being_handled"),
        ("being_handled", "case.closed", "closed"),
        ("closed", "case.action_recorded", "closed"),
        ("closed", "case.reopened", "being_handled"),
        ("received", "case.escalated", "received"),
    ],
)
def test_a_stage_moves_forward_with_the_case(current: str, event_type: str, after: str) -> None:
    assert stage_after(current, event_type) == after
