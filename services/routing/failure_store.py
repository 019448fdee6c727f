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


_RECORD_FAILURES = sa.text(
    f"""
    insert into {SCHEMA}.notification_failures (notification_id, case_id, person_id, channel, failed_at)
    select notification_id, case_id, person_id, channel, :at
    from unnest(cast(:ids as text[]), cast(:case_ids as text[]), cast(:people as text[]), cast(:channels as text[]))
      as failed(notification_id, case_id, person_id, channel)
    on conflict do nothing
    """
)


_FAILED_IDS = sa.text(
    f"select case_id, notification_id from {SCHEMA}.notification_failures "
    "where case_id = any(cast(:case_ids as text[]))"
)


class NotificationFailures(Protocol):
    """Failed notifications by case (`SqlNotificationFailures`; a fake in tests/support/fakes.py)."""

    async def record(self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime) -> None: ...

    async def failed_ids(self, session: AsyncSession, *, case_ids: Sequence[str]) -> dict[str, set[str]]: ...


class SqlNotificationFailures:
    """The `notification_failures` table."""

    async def record(self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime) -> None:
        """Record these failures (one statement); one already recorded stays as it was."""
        if not failed:
            return
        await session.execute(
            _RECORD_FAILURES,
            {
                "ids": [f.notification_id for f in failed],
                "case_ids": [f.case_id for f in failed],
                "people": [f.person_id for f in failed],
                "channels": [f.channel for f in failed],
                "at": at,
            },
        )

    async def failed_ids(self, session: AsyncSession, *, case_ids: Sequence[str]) -> dict[str, set[str]]:
        """The notifications recorded as failed, by case (every case asked for is a key)."""
        found: dict[str, set[str]] = {case_id: set() for case_id in case_ids}
        if case_ids:
            rows = await session.execute(_FAILED_IDS, {"case_ids": list(case_ids)})
            for row in rows:
                found[row.case_id].add(row.notification_id)
        return found
