"""Routing's handler for notification.failed: the person's next channel now, or the next rung now."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.routing.domain import ACKNOWLEDGE, notification_requests
from services.routing.failure_store import FailedNotification, NotificationFailures
from services.routing.fallback import next_channel, people_at_rung
from services.routing.handlers import Routing
from services.routing.policy.model import Policy
from services.routing.quiet import quiet_hold
from services.routing.store import DueDeadline
from shared.consumer import handling
from shared.contracts.envelope import Event
from shared.contracts.events import NotificationFailed
from shared.subjects import ROUTING_FAILURES
from shared.unit_of_work import Work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """What one failure leads to: requests on the person's next channel, or the escalation brought forward."""

    requests: list[Event[Any]] = field(default_factory=list)
    bring_forward: str | None = None  # the acknowledgement deadline to make due now


def after_failure(
    event: NotificationFailed, *, deadline: DueDeadline | None, failed_ids: set[str], policy: Policy, now: datetime
) -> Step:
    """Given the case's pending acknowledgement deadline and the notifications failed so far (pure)."""
    failed = event.payload
    if deadline is None:  # acknowledged already, or the ladder has run out: nothing waits on this person
        return Step()
    rung = int(deadline.detail.get("rung", 0))
    person = next(
        (p for p in people_at_rung(deadline.detail, rung=rung) if p.person_id == failed.recipient_person_id), None
    )
    if person is None:  # a failure from an earlier rung: escalation has already moved on
        return Step()
    urgency = deadline.detail["urgency"]
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
        return Step(requests=list(requests))
    if fallback.step == "unreachable":
        log.warning("case %s: %s cannot be reached on any channel; escalating now", failed.case_id, person.person_id)
        return Step(bring_forward=deadline.deadline_id)
    return Step()


async def on_notifications_failed(
    events: Sequence[NotificationFailed],
    *,
    work: Work,
    routing: Routing,
    failures: NotificationFailures,
    wake_scheduler: Callable[[], None],
    stream_sequences: Mapping[uuid.UUID, int] | None = None,
) -> None:
    """Notifications failed for good: try each person's next channel, else bring the escalation forward to now.

    A batch is a handful of statements: the failures recorded (reading the cases' earlier ones, and claiming the
    batch when the edge leaves that to it, in the same statement), the pending acknowledgement deadlines read
    (locked), then the holds for quiet hours and the deadlines brought forward. Each failure sees the ones before
    it in the batch, as if they had come one at a time."""
    session, now = work.session, routing.clock()
    failed = [
        FailedNotification(
            e.payload.notification_id, e.payload.case_id, e.payload.recipient_person_id, e.payload.channel
        )
        for e in events
    ]
    if (claim := work.take_claim()) is None:
        failed_so_far = await failures.record(session, failed, at=now)
    else:  # the edge left the claim to this first statement: act on the events not claimed before
        failed_so_far, fresh = await failures.record_claiming(session, failed, at=now, claim=claim)
        events = [event for event in events if event.event_id in fresh]
    case_ids = sorted({event.payload.case_id for event in events})
    pending = await routing.deadlines.pending(session, case_ids=case_ids, kind=ACKNOWLEDGE)
    held: list[DueDeadline] = []
    brought_forward: list[str] = []
    for event in events:
        failed_ids = failed_so_far[event.payload.case_id]
        failed_ids.add(event.payload.notification_id)
        policy = routing.policies.current(event.school_id)
        with handling(ROUTING_FAILURES, event):  # a fallback request is a child of this span
            step = after_failure(
                event, deadline=pending.get(event.payload.case_id), failed_ids=failed_ids, policy=policy, now=now
            )
        publish, hold = quiet_hold(step.requests, policy=policy, now=now)
        work.emit(publish)
        held += hold
        if step.bring_forward is not None:
            brought_forward.append(step.bring_forward)
    await routing.deadlines.set_all(session, held)
    if brought_forward:
        await routing.deadlines.bring_forward(session, deadline_ids=brought_forward, to=now)
        work.wake_after_commit(wake_scheduler)
