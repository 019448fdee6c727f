"""Delivery receipts: a channel saying the message reached the device (SMS status callback, push shown).

SMS: a Twilio-style provider posts the message's status to the `StatusCallback` URL the adapter gave it,
signed `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted
by name)). `delivered` makes the delivery delivered (`notification.delivered`); `undelivered` or `failed` is a
permanent failure (`notification.failed`, so routing moves on). Push: the service worker posts a receipt when
it shows the notification, proved by a token signed for that notification alone. Email has no receipt.
A receipt is recorded once; a repeat changes nothing and publishes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.outcomes import announcing
from services.notifications.store import IN_FLIGHT, SqlDeliveries
from shared.contracts.envelope import Actor, Event, parse_event
from shared.contracts.events import (
    NotificationDelivered,
    NotificationDeliveredPayload,
    NotificationFailed,
    NotificationFailedPayload,
    NotificationRequested,
)

RECEIPTS_ACTOR = Actor(id="notifications", role="service")
# Twilio's message statuses: the final ones that say whether the handset got it; the rest are on the way.
DELIVERED = frozenset({"delivered", "read", "shown"})  # `shown`: the staff service worker displayed a push
NOT_DELIVERED = frozenset({"undelivered", "failed"})
ReceiptOutcome = Literal["recorded", "repeat", "unknown", "not_sent_yet", "in_progress"]


def provider_signature(url: str, params: Iterable[tuple[str, str]], *, auth_token: str) -> str:
    """Twilio's request signature: HMAC-SHA1 over the URL then every parameter name+value sorted, base64."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(url: str, params: Iterable[tuple[str, str]], *, auth_token: str, presented: str) -> bool:
    """Whether `presented` is the provider's signature of this request (constant-time)."""
    if not auth_token or not presented:
        return False
    expected = provider_signature(url, params, auth_token=auth_token)
    return hmac.compare_digest(expected.encode(), presented.encode())


async def record_receipt(
    notification_id: str,
    *,
    session: AsyncSession,
    deliveries: SqlDeliveries,
    channel: str,
    status: str,
    provider_message_id: str,
    detail: str,
    at: datetime,
) -> tuple[ReceiptOutcome, list[Event[Any]]]:
    """Record a channel's receipt for one notification; the outcome and the events to publish (none on a repeat)."""
    row = await deliveries.get(session, notification_id)
    if row is None or row.channel != channel:
        return "unknown", []
    if provider_message_id and row.provider_message_id and provider_message_id != row.provider_message_id:
        return "unknown", []  # a receipt for another message than the one recorded
    if status not in DELIVERED | NOT_DELIVERED:
        return "in_progress", []  # queued, sent, ...: the final word is still to come
    if row.status in IN_FLIGHT:
        return "not_sent_yet", []  # the send's own outcome is not recorded yet: the provider should try again
    delivered = status in DELIVERED
    recorded = await deliveries.record_receipt(
        session, notification_id=notification_id, receipt=status, delivered=delivered, detail=detail, at=at
    )
    if recorded is None:
        return "repeat", []
    request = parse_event(recorded.request)
    assert isinstance(request, NotificationRequested)
    return "recorded", [_announce(request, status=status, delivered=delivered, detail=detail, at=at)]


def _announce(request: NotificationRequested, *, status: str, delivered: bool, detail: str, at: datetime) -> Event[Any]:
    common, about = announcing(request, actor=RECEIPTS_ACTOR, at=at)
    if delivered:
        return NotificationDelivered.new(NotificationDeliveredPayload(**about, receipt=status), **common)
    # The provider's final word: routing moves on to the person's next channel or the next rung.
    return NotificationFailed.new(NotificationFailedPayload(**about, reason=detail, retryable=False), **common)
