"""Notifications that failed for good, by case: which channels to a person are known dead (routing's fallback)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.store import SCHEMA
from shared.inbox_outbox import InboxOutbox
from shared.unit_of_work import Claim


@dataclass(frozen=True)
class FailedNotification:
    notification_id: str
    case_id: str
    person_id: str
    channel: str


# Records the failures and reads the cases' earlier ones in one round trip: the select does not see what the
# insert beside it adds (every part of a statement sees the same snapshot), so it answers as a read before would.
_RECORD_FAILURES = """
    with {claimed}recorded as (
      insert into {schema}.notification_failures (notification_id, case_id, person_id, channel, failed_at)
      select notification_id, case_id, person_id, channel, :at
      from unnest(cast(:ids as text[]), cast(:case_ids as text[]), cast(:people as text[]), cast(:channels as text[]))
        as failed(notification_id, case_id, person_id, channel)
      on conflict do nothing
    )
    select case_id, notification_id{claimed_column} from {schema}.notification_failures
    where case_id = any(cast(:case_ids as text[])){claimed_rows}
    """
RECORD_FAILURES = sa.text(_RECORD_FAILURES.format(schema=SCHEMA, claimed="", claimed_column="", claimed_rows=""))
# The same, claiming the batch's notification.failed events for the consumer first: a row with `claimed` set names
# an event not claimed before (its failure is the batch's to act on), the others are the cases' earlier failures.
RECORD_FAILURES_CLAIMING = sa.text(
    _RECORD_FAILURES.format(
        schema=SCHEMA,
        claimed=f"claimed as ({InboxOutbox(SCHEMA).claim_sql()}),\n    ",
        claimed_column=", cast(null as uuid) as claimed",
        claimed_rows="\n    union all select null, null, event_id from claimed",
    )
)


class NotificationFailures(Protocol):
    """Failed notifications by case (`SqlNotificationFailures`; a fake in tests/support/fakes.py)."""

    async def record(
        self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime
    ) -> dict[str, set[str]]: ...

    async def record_claiming(
        self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime, claim: Claim
    ) -> tuple[dict[str, set[str]], set[uuid.UUID]]: ...


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
        for row in await session.execute(RECORD_FAILURES, _arguments(failed, at=at)):
            found[row.case_id].add(row.notification_id)
        return found

    async def record_claiming(
        self, session: AsyncSession, failed: Sequence[FailedNotification], *, at: datetime, claim: Claim
    ) -> tuple[dict[str, set[str]], set[uuid.UUID]]:
        """As `record`, claiming the batch's events for the consumer in the same statement; also returns the ids
        of the events not claimed before (a redelivered one is not among them)."""
        found: dict[str, set[str]] = {f.case_id: set() for f in failed}
        fresh: set[uuid.UUID] = set()
        arguments = _arguments(failed, at=at) | claim.parameters()
        for row in await session.execute(RECORD_FAILURES_CLAIMING, arguments):
            if row.claimed is not None:
                fresh.add(row.claimed)
            else:
                found[row.case_id].add(row.notification_id)
        return found, fresh


def _arguments(failed: Sequence[FailedNotification], *, at: datetime) -> dict[str, Any]:
    return {
        "ids": [f.notification_id for f in failed],
        "case_ids": [f.case_id for f in failed],
        "people": [f.person_id for f in failed],
        "channels": [f.channel for f in failed],
        "at": at,
    }
