"""Notifications' schema: one delivery row per notification id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

SCHEMA = "notifications"
metadata = sa.MetaData(schema=SCHEMA)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("recipient_person_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("requested_event_id", sa.Uuid, nullable=False),
    sa.Column("correlation_id", sa.Uuid, nullable=False),
    sa.Column("traceparent", sa.Text),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.Text),
)


# The browsers each person has allowed to receive push messages (migration 0002).
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("p256dh", sa.Text, nullable=False),
    sa.Column("auth", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_push_subscriptions_person_id", "person_id"),
)


@dataclass(frozen=True)
class DeliveryRecord:
    """One notification's delivery row."""

    notification_id: str
    school_id: str
    case_id: str
    recipient_person_id: str
    channel: str
    status: str
    detail: str | None
    requested_event_id: uuid.UUID
    correlation_id: uuid.UUID
    traceparent: str | None
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class Deliveries(Protocol):
    """What notifications asks of its delivery rows (`SqlDeliveries`; a fake in tests/support/fakes.py)."""

    async def claim(
        self,
        session: AsyncSession,
        *,
        notification_id: str,
        school_id: str,
        case_id: str,
        recipient_person_id: str,
        channel: str,
        requested_event_id: uuid.UUID,
        correlation_id: uuid.UUID,
        traceparent: str | None,
    ) -> bool: ...

    async def finish(
        self, session: AsyncSession, *, notification_id: str, status: str, detail: str, at: datetime
    ) -> None: ...

    async def acknowledge(
        self, session: AsyncSession, *, notification_id: str, by: str, at: datetime
    ) -> DeliveryRecord | None: ...

    async def get(self, session: AsyncSession, notification_id: str) -> DeliveryRecord | None: ...


def _record(row: sa.Row | None) -> DeliveryRecord | None:
    return None if row is None else DeliveryRecord(**row._asdict())


class SqlDeliveries:
    """Delivery rows: claimed before sending so a second request for the same notification sends nothing."""

    async def claim(
        self,
        session: AsyncSession,
        *,
        notification_id: str,
        school_id: str,
        case_id: str,
        recipient_person_id: str,
        channel: str,
        requested_event_id: uuid.UUID,
        correlation_id: uuid.UUID,
        traceparent: str | None,
    ) -> bool:
        """Create the delivery row; False when this notification was already handled."""
        result = await session.execute(
            insert(deliveries)
            .values(
                notification_id=notification_id,
                school_id=school_id,
                case_id=case_id,
                recipient_person_id=recipient_person_id,
                channel=channel,
                status="sending",
                requested_event_id=requested_event_id,
                correlation_id=correlation_id,
                traceparent=traceparent,
            )
            .on_conflict_do_nothing()
            .returning(deliveries.c.notification_id)
        )
        return result.first() is not None

    async def finish(
        self, session: AsyncSession, *, notification_id: str, status: str, detail: str, at: datetime
    ) -> None:
        """Record how the delivery ended (`sent` with the provider's id, or `failed` with the reason)."""
        await session.execute(
            sa.update(deliveries)
            .where(deliveries.c.notification_id == notification_id)
            .values(status=status, detail=detail, delivered_at=at if status == "sent" else None)
        )

    async def acknowledge(
        self, session: AsyncSession, *, notification_id: str, by: str, at: datetime
    ) -> DeliveryRecord | None:
        """Mark acknowledged once; returns the row when this call acknowledged it, None otherwise."""
        return _record(
            (
                await session.execute(
                    sa.update(deliveries)
                    .where(deliveries.c.notification_id == notification_id, deliveries.c.acknowledged_at.is_(None))
                    .values(acknowledged_at=at, acknowledged_by=by)
                    .returning(deliveries)
                )
            ).first()
        )

    async def get(self, session: AsyncSession, notification_id: str) -> DeliveryRecord | None:
        """The notification's delivery row, if it was ever requested."""
        return _record(
            (
                await session.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
            ).first()
        )
