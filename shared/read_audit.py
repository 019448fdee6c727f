"""Read auditing: every view of a confidential record becomes a `record.viewed` event in the ledger.

A viewer (the staff app, the case and audit command lines) builds the event with `record_viewed` and puts it in
its own outbox in a transaction that commits *before* it shows the record, so nothing is seen unrecorded.
"""

from __future__ import annotations

from datetime import datetime

from shared.contracts.envelope import Actor
from shared.contracts.record_events import RecordKind, RecordViewed, RecordViewedPayload


def record_viewed(
    record_id: str,
    *,
    school_id: str,
    viewer: Actor,
    view: str,
    reason: str,
    now: datetime,
    record_kind: RecordKind = "case",
    via: str = "safeguard-cli",
    break_glass: bool = False,
) -> RecordViewed:
    """The event saying `viewer` looked at `record_id` (a case, or a school's record) at `now`, and why."""
    payload = RecordViewedPayload(
        record_kind=record_kind, record_id=record_id, view=view, via=via, reason=reason, break_glass=break_glass
    )
    event: RecordViewed = RecordViewed.new(
        payload, school_id=school_id, aggregate_id=record_id, actor=viewer, occurred_at=now
    )
    return event
