"""Notifications that failed for good, by case: which channels to a person are known dead (routing's fallback)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.store import SCHEMA


@dataclass(frozen=True)
class FailedNotification:
    notification_id: str
    case_id: str
    person_id: str
    channel: str


# Records the failures and reads the cases' earlier ones in one round trip: the select does not see what the
# insert beside it adds (every part of a statement sees the same snapshot), so it answers as a read before would.
_RECORD_FAILURES = sa.text(
    f"""
    with recorded as (
      insert into {SCHEMA}.notification_failures (notification_id, case_id, person_id, channel, failed_at)
      select notification_id, case_id, person_id, channel, :at
      from unnest(cast(:ids as text[]), cast(:case_ids as text[]), cast(:people as text[]), cast(:channels as text[]))
        as failed(notification_id, case_id, person_id, channel)
      on conflict do nothing
    )
    select case_id, notification_id from {SCHEMA}.notification_failures
    where case_id = any(cast(:case_ids as text[]))
    """
)


class NotificationFailures(Protocol):
    """Failed notifications by case (`SqlNotificationFailures`; a fake in tests/support/fakes.py)."""

    async def record(
        self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime
    ) -> dict[str, set[str]]: ...


class SqlNotificationFailures:
    """The `notification_failures` table."""

    async def record(
        self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime
    ) -> dict[str, set[str]]:
        """Record these failures (one statement; one already recorded stays as it was) and return the failures
        recorded before them, by case (each of their cases a key)."""
        found: dict[str, set[str]] = {f.case_id: set() for f in failed}
        if not failed:
            return found
        rows = await session.execute(
            _RECORD_FAILURES,
            {
                "ids": [f.notification_id for f in failed],
                "case_ids": [f.case_id for f in failed],
                "people": [f.person_id for f in failed],
                "channels": [f.channel for f in failed],
                "at": at,
            },
        )
        for row in rows:
            found[row.case_id].add(row.notification_id)
        return found
