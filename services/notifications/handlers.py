"""Notifications' handlers: record a requested notification once (the dispatcher sends it); an acknowledgement once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.dispatcher import Dispatcher
from services.notifications.store import SqlDeliveries
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import (
    NotificationAcknowledged,
    NotificationAcknowledgedPayload,
    NotificationRequested,
)
from shared.unit_of_work import Work


async def on_notifications_requested(
    events: Sequence[NotificationRequested],
    *,
    work: Work,
    deliveries: SqlDeliveries,
    clock: Callable[[], datetime],
    dispatcher: Dispatcher,
    stream_sequences: Mapping[uuid.UUID, int] | None = None,
) -> None:
    """Record a batch's deliveries once per notification id, in one statement. Those the dispatcher has room for are
    recorded claimed for sending and handed to it as soon as the statement returns committed; it is woken after commit
    for any left requested.

    The deliveries are the request consumer's inbox: a redelivered request finds its notification id recorded (the
    table's key) and the statement changes nothing for it, so the batch's claim is taken here and no inbox row is
    written."""
    work.take_claim()
    at = clock()
    # Only a statement that commits by itself claims for sending: inside a transaction block its rows would be
    # handed over before they were committed.
    with dispatcher.handing_over(len(events) if work.autocommit else 0) as hand_over:
        recorded = await deliveries.record_all_requested(
            work.session,
            events,
            at=at,
            claiming=hand_over.room,
            sending_timeout=hand_over.sending_timeout,
        )
        hand_over.begin(recorded.claimed)  # committed: each row is `sending`, its attempt counted
    if len(recorded.claimed) < len(recorded.fresh):
        work.wake_after_commit(dispatcher.wake)


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
