"""Notifications' handlers: deliver a requested notification once; record an acknowledgement once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.channels import Channel, Delivery, DeliveryFailed
from services.notifications.domain import render
from services.notifications.links import AckLinks
from services.notifications.store import SqlDeliveries
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import (
    NotificationAcknowledged,
    NotificationAcknowledgedPayload,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationRequested,
    NotificationSent,
    NotificationSentPayload,
)
from shared.unit_of_work import Work

SERVICE_ACTOR = Actor(id="notifications", role="service")


@dataclass
class Notifier:
    """What delivering a notification needs."""

    deliveries: SqlDeliveries
    channels: Mapping[str, Channel]
    signer: AckLinks
    console_url: str
    clock: Callable[[], datetime]


async def on_notification_requested(
    event: NotificationRequested, *, work: Work, notifier: Notifier
) -> list[Event[Any]]:
    """Deliver through the requested channel and report sent or failed; a repeat request sends nothing."""
    request = event.payload
    session = work.session
    claimed = await notifier.deliveries.claim(
        session,
        notification_id=request.notification_id,
        school_id=event.school_id,
        case_id=request.case_id,
        recipient_person_id=request.recipient.person_id,
        channel=request.channel,
        requested_event_id=event.event_id,
        correlation_id=event.correlation_id,
        traceparent=event.traceparent,
    )
    if not claimed:
        return []
    message = render(
        request,
        console_url=notifier.console_url,
        ack_token=notifier.signer.token(
            request.notification_id, person_id=request.recipient.person_id, now=notifier.clock()
        ),
    )
    channel = notifier.channels.get(request.channel)
    now = notifier.clock()
    common: dict[str, Any] = {
        "school_id": event.school_id,
        "aggregate_id": request.notification_id,
        "actor": SERVICE_ACTOR,
        "occurred_at": now,
        "cause": event,
    }
    try:
        if channel is None:
            raise DeliveryFailed(f"no {request.channel} channel is configured", retryable=False)
        provider_id = await channel.send(Delivery(request.notification_id, request.address, message))
    except DeliveryFailed as failed:
        await notifier.deliveries.finish(
            session, notification_id=request.notification_id, status="failed", detail=str(failed), at=now
        )
        return [
            NotificationFailed.new(
                NotificationFailedPayload(
                    notification_id=request.notification_id,
                    case_id=request.case_id,
                    channel=request.channel,
                    recipient_person_id=request.recipient.person_id,
                    reason=str(failed),
                    retryable=failed.retryable,
                ),
                **common,
            )
        ]
    await notifier.deliveries.finish(
        session, notification_id=request.notification_id, status="sent", detail=provider_id, at=now
    )
    return [
        NotificationSent.new(
            NotificationSentPayload(
                notification_id=request.notification_id,
                case_id=request.case_id,
                channel=request.channel,
                recipient_person_id=request.recipient.person_id,
                provider_message_id=provider_id,
            ),
            **common,
        )
    ]


async def acknowledge(
    notification_id: str, *, session: AsyncSession, deliveries: SqlDeliveries, at: datetime
) -> tuple[bool, list[Event[Any]]]:
    """Record the recipient's acknowledgement; (found, events) — no event when it was already acknowledged."""
    existing = await deliveries.get(session, notification_id)
    if existing is None:
        return False, []
    row = await deliveries.acknowledge(session, notification_id=notification_id, by=existing.recipient_person_id, at=at)
    if row is None:
        return True, []
    event = NotificationAcknowledged(
        event_id=uuid.uuid4(),
        type=NotificationAcknowledged.TYPE,
        version=NotificationAcknowledged.VERSION,
        school_id=row.school_id,
        aggregate_id=notification_id,
        occurred_at=at,
        actor=Actor(id=row.recipient_person_id, role="recipient"),
        correlation_id=row.correlation_id,
        causation_id=row.requested_event_id,
        traceparent=row.traceparent,
        payload=NotificationAcknowledgedPayload(
            notification_id=notification_id, case_id=row.case_id, acknowledged_by=row.recipient_person_id
        ),
    )
    return True, [event]
