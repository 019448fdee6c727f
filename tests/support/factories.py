"""Synthetic concerns and events for tests: no real people."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.contracts.concern import Channel, ConcernReport
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import (
    ConcernReceived,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationRequested,
    NotificationRequestedPayloadV2,
    PersonRef,
)


def report_json(**overrides: Any) -> dict[str, Any]:
    """A concern as a reporter would send it to the JSON API."""
    body: dict[str, Any] = {
        "reporter": {"role": "staff", "name": "Test Teacher", "contact": "teacher@example.org"},
        "people": [{"role": "learner", "involvement": "victim", "name": "Learner A", "age": 12}],
        "kind": "online_bullying",
        "summary": "Hurtful messages in a class group chat",
        "details": "Synthetic test concern",
        "platform": "messaging_app",
        "in_school_hours": False,
    }
    body.update(overrides)
    return body


def concern_received(
    *, school_id: str = "st-marks", received_at: datetime | None = None, **overrides: Any
) -> ConcernReceived:
    """A concern.received event as intake would publish it (received now, or at a test clock's `received_at`)."""
    from services.intake.domain import concern_received as build

    return build(
        ConcernReport.model_validate(report_json(**overrides)),
        school_id=school_id,
        reference=f"SG-TEST-{uuid.uuid4().hex[:8].upper()}",
        channel=Channel.json_api,
        raw_input_id=uuid.uuid4(),
        received_at=received_at or utc_now(),
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
    )


TEST_ACTOR = Actor(id="test", role="service")


def notification_requested(
    *,
    channel: str,
    address: str,
    recipient: PersonRef,
    notification_id: str | None = None,
    reference: str = "SG-2026-TESTREF1",
    urgency: str = "immediate",
    reason: str = "rule immediate-risk",
    cause: Any = None,
) -> NotificationRequested:
    """A notification.requested event as routing would publish it (a fresh notification id unless given)."""
    notification_id = notification_id or str(uuid.uuid4())
    return NotificationRequested.new(
        NotificationRequestedPayloadV2(
            notification_id=notification_id,
            case_id="case-1",
            reference=reference,
            recipient=recipient,
            channel=channel,  # type: ignore[arg-type]
            address=address,
            urgency=urgency,  # type: ignore[arg-type]
            reason=reason,
        ),
        school_id="st-marks",
        aggregate_id=notification_id,
        actor=Actor(id="routing", role="service"),
        occurred_at=utc_now(),
        cause=cause or concern_received(),
    )


def failure_of(request: NotificationRequested) -> NotificationFailed:
    """What notifications announces when a request cannot be delivered (a permanent refusal)."""
    payload = request.payload
    return NotificationFailed.new(
        NotificationFailedPayload(
            notification_id=payload.notification_id,
            case_id=payload.case_id,
            channel=payload.channel,
            recipient_person_id=payload.recipient.person_id,
            reason="mail server said 550",
            retryable=False,
        ),
        school_id=request.school_id,
        aggregate_id=payload.notification_id,
        actor=Actor(id="notifications", role="service"),
        occurred_at=request.occurred_at,
        cause=request,
    )
