"""A receipt's stage, from the case events: forward only, a reopened case handled again."""

from __future__ import annotations

import pytest

from services.intake.receipts import READS, STAGES, stage_after
from shared.contracts.envelope import registry


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


def test_the_case_events_the_receipts_consumer_acks_unread_never_move_a_stage() -> None:
    case_types = {event_type for event_type, _ in registry().classes() if event_type.startswith("case.")}
    unread = case_types - READS
    assert "case.triaged" in unread and case_types >= READS  # READS names real types
    for event_type in unread:
        assert all(stage_after(stage, event_type) == stage for stage in STAGES), event_type
