"""Dead letters reach a person: the school's DSL is told how many messages were set aside, never what they said.

Counted per consumer in windows of the standing-alert interval; the DSL is told at the 1st, 10th, 100th ...
in each window, so a flood is announced a few times with its size, and a window with any dead letter is
never silent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from services.routing.domain import derived_id, notification_requests
from services.routing.handlers import Routing
from services.routing.policy.decision import Recipient
from services.routing.policy.floor import DSL
from services.routing.policy.model import Policy
from services.routing.policy_book import UnknownSchool
from services.routing.store import count_dead_letter
from shared.contracts.envelope import Event
from shared.contracts.events import OpsDeadLettered
from shared.unit_of_work import Work

log = logging.getLogger(__name__)


def window_start(now: datetime, *, every: timedelta) -> datetime:
    """The start of the counting window `now` falls in."""
    seconds = every.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=UTC)


def worth_telling(parked: int) -> bool:
    """The 1st, 10th, 100th ... dead letter in a window."""
    while parked % 10 == 0 and parked > 1:
        parked //= 10
    return parked == 1


def school_dsls(policy: Policy) -> list[Recipient]:
    """The school's designated safeguarding leads, as recipients of an operational alert."""
    return [Recipient(person_id=p.id, name=p.name, role=DSL, channels=p.contact) for p in policy.holders(DSL)]


def alert_dsls(
    policy: Policy,
    *,
    cause: Event[Any],
    alert_id: str,
    reference: str,
    reason: str,
    now: datetime,
    leave_out: str | None = None,
) -> list[Event[Any]]:
    """One high-urgency operational alert to each of the school's DSLs (but `leave_out`): never case content."""
    return list(
        notification_requests(
            [dsl for dsl in school_dsls(policy) if dsl.person_id != leave_out],
            case_id=f"ops:{alert_id}",
            reference=reference,
            urgency="high",
            reason=reason,
            rung=0,
            school_id=cause.school_id,
            cause=cause,
            now=now,
            plan=policy.notifications,
        )
    )


async def on_dead_lettered(event: OpsDeadLettered, *, work: Work, routing: Routing) -> list[Event[Any]]:
    """Count the dead letter; at the 1st, 10th, 100th ... in a window, tell the school's DSL how many."""
    parked = event.payload
    now = routing.clock()
    start = window_start(now, every=routing.alert_every)
    count = await count_dead_letter(
        work.session, school_id=event.school_id, consumer=parked.consumer, window_start=start
    )
    if not worth_telling(count):
        return []
    try:
        policy = routing.policies.current(event.school_id)
    except UnknownSchool:  # a school with no policy has nobody to tell: the error log line is all there is
        log.error("dead letter for %s at unknown school %s: nobody to tell", parked.consumer, event.school_id)
        return []
    return alert_dsls(
        policy,
        cause=event,
        alert_id=derived_id("dead-letters", event.school_id, parked.consumer, start, count),
        reference=f"{count} set aside by {parked.consumer} since {start:%H:%M} UTC",
        reason=f"ops: dead letters ({parked.reason_code})",
        now=now,
    )
