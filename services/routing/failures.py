"""Routing's handler for notification.failed: the person's next channel now, or the next rung now."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from services.routing.domain import ACKNOWLEDGE, notification_requests
from services.routing.fallback import next_channel, people_at_rung
from services.routing.handlers import Routing
from services.routing.quiet import hold_for_quiet_hours
from services.routing.store import SqlNotificationFailures
from shared.contracts.envelope import Event
from shared.contracts.events import NotificationFailed
from shared.unit_of_work import Work

log = logging.getLogger(__name__)


async def on_notification_failed(
    event: NotificationFailed,
    *,
    work: Work,
    routing: Routing,
    failures: SqlNotificationFailures,
    wake_scheduler: Callable[[], None],
) -> list[Event[Any]]:
    """A notification failed for good: try that person's next channel, else bring the escalation forward to now."""
    failed = event.payload
    session, now = work.session, routing.clock()
    await failures.record(
        session,
        notification_id=failed.notification_id,
        case_id=failed.case_id,
        person_id=failed.recipient_person_id,
        channel=failed.channel,
        at=now,
    )
    deadline = await routing.deadlines.pending(session, case_id=failed.case_id, kind=ACKNOWLEDGE)
    if deadline is None:  # acknowledged already, or the ladder has run out: nothing waits on this person
        return []
    rung = int(deadline.detail.get("rung", 0))
    person = next(
        (p for p in people_at_rung(deadline.detail, rung=rung) if p.person_id == failed.recipient_person_id), None
    )
    if person is None:  # a failure from an earlier rung: escalation has already moved on
        return []
    urgency = deadline.detail["urgency"]
    failed_ids = await failures.failed_ids(session, case_id=failed.case_id)
    policy = routing.policies.current(event.school_id)
    fallback = next_channel(
        person, urgency=urgency, case_id=failed.case_id, rung=rung, failed_ids=failed_ids, plan=policy.notifications
    )
    if fallback.step == "try":
        log.info("case %s: notification %s failed; trying %s", failed.case_id, failed.notification_id, fallback.channel)
        requests = notification_requests(
            [person],
            case_id=failed.case_id,
            reference=deadline.detail.get("reference", ""),
            urgency=urgency,
            reason=f"fallback: {failed.channel} failed",
            rung=rung,
            school_id=event.school_id,
            cause=event,
            now=now,
            only_channel=fallback.channel,
            plan=policy.notifications,
        )
        return await hold_for_quiet_hours(
            requests, session=session, deadlines=routing.deadlines, policy=policy, now=now
        )
    if fallback.step == "unreachable":
        log.warning("case %s: %s cannot be reached on any channel; escalating now", failed.case_id, person.person_id)
        await routing.deadlines.bring_forward(session, deadline_id=deadline.deadline_id, to=now)
        work.wake_after_commit(wake_scheduler)
    return []
