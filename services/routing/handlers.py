"""Routing's handlers: triage a new concern, stop escalation on acknowledgement, act on a due deadline."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.case import CommandRejected
from services.routing.case.commands import Acknowledge
from services.routing.case_command_edge import record_command
from services.routing.command_auth import CommandRefused, log_refusal, refusal_event, role_in_policy
from services.routing.debrief_reminders import DEBRIEF_ACTION, remind_debrief_action
from services.routing.domain import (
    ROUTING,
    STANDING_ALERT,
    case_id_for,
    escalation_events,
    ladder_as_data,
    next_rung,
    notification_requests,
    policy_review_reference,
    triage_events,
)
from services.routing.policy import ACKNOWLEDGE
from services.routing.policy.decide import acknowledge_by, decide, escalation_ladder
from services.routing.policy.decision import Recipient
from services.routing.policy.floor import HEADTEACHER, NAMED_GOVERNOR
from services.routing.policy.model import Policy, Urgency
from services.routing.policy.notifying import NotificationPlan
from services.routing.policy_book import POLICY_REVIEW, PolicyBook
from services.routing.quiet import DEFERRED, hold_for_quiet_hours, quiet_hold, released
from services.routing.standing_alert import next_alert, standing_alert_events
from services.routing.store import CaseEvents, Deadlines, DueDeadline, OpenedCase
from shared.consumer import handling
from shared.contracts.envelope import Actor, Event, parse_event
from shared.contracts.events import (
    POLICY_REVIEW_DUE,
    CaseEscalated,
    CaseTriaged,
    ConcernReceived,
    DeadlineReached,
    DeadlineReachedPayload,
    DeadlineSet,
    NotificationAcknowledged,
    PersonRef,
    PolicyReviewDue,
    PolicyReviewDuePayload,
)
from shared.subjects import ROUTING_CONCERNS
from shared.unit_of_work import Work

log = logging.getLogger(__name__)


@dataclass
class Routing:
    """What routing's handlers need."""

    policies: PolicyBook
    case_events: CaseEvents
    deadlines: Deadlines
    clock: Callable[[], datetime]
    alert_every: timedelta = timedelta(minutes=30)
    debrief_every: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Triage:
    """What triaging one concern comes to: events to publish now, the new case, and the deadlines to set."""

    publish: list[Event[Any]]
    case: OpenedCase
    deadlines: list[DueDeadline]


def triage(event: ConcernReceived, *, policy: Policy, now: datetime) -> Triage:
    """Decide under the school's policy: the case's first events, who is told, by when (pure)."""
    decision = decide(event.payload, policy)
    for alert in decision.alerts:  # operational alerts name the reference, never a person
        log.error("ROUTING ALERT %s: %s", event.school_id, alert)
    case_id = case_id_for(event)
    events = triage_events(event, decision, now=now, plan=policy.notifications, case_id=case_id)
    ladder = ladder_as_data(escalation_ladder(decision, policy=policy))
    told = [r.model_dump(mode="json") for r in decision.recipients]
    deadlines = [
        DueDeadline(
            deadline_id=deadline.payload.deadline_id,
            school_id=event.school_id,
            case_id=case_id,
            kind=deadline.payload.kind,
            due_at=deadline.payload.due_at,
            detail={
                "rung": 0,
                "ladder": ladder,
                "told": told,
                "urgency": decision.urgency.value,
                "policy_version": decision.policy_version,
                "reference": event.payload.reference,
                "description": deadline.payload.description,
            },
            cause=deadline,  # written as the detail's cause with the event's own text (SqlCaseEvents.open_all)
        )
        for deadline in events
        if isinstance(deadline, DeadlineSet)
    ]
    publish, held = quiet_hold(events, policy=policy, now=now)
    case = OpenedCase(
        case_id=case_id,
        school_id=event.school_id,
        reference=event.payload.reference,
        events=[e for e in events if e.AGGREGATE == "case"],
        policy_version=decision.policy_version,
        opened_at=now,
    )
    return Triage(publish=publish, case=case, deadlines=deadlines + held)


async def on_concerns_received(
    events: Sequence[ConcernReceived],
    *,
    work: Work,
    routing: Routing,
    stream_sequences: Mapping[uuid.UUID, int] | None = None,
) -> None:
    """Decide each concern under its school's current policy; open and triage the cases, request notifications
    and set deadlines for the whole batch in one statement (which claims the batch when the edge leaves it that)."""
    now = routing.clock()
    triaged = []
    causes: dict[uuid.UUID, uuid.UUID] = {}  # each event written, by id: the concern it came from
    for event in events:
        with handling(ROUTING_CONCERNS, event):  # the requests and case events are children of this span
            done = triage(event, policy=routing.policies.current(event.school_id), now=now)
        work.emit(done.publish)
        triaged.append(done)
        for caused in (*done.publish, *done.case.events, *(row.cause for row in done.deadlines if row.cause)):
            causes[caused.event_id] = event.event_id
    # The cases, their events, the batch's outbox rows and its deadlines in one statement (each event serialised
    # once), claiming the concerns too when the consumer edge leaves the claim to it.
    await routing.case_events.open_all(
        work.session,
        [done.case for done in triaged],
        due=[row for done in triaged for row in done.deadlines],
        work=work,
        causes=causes,
    )


async def on_concern_received(event: ConcernReceived, *, work: Work, routing: Routing) -> list[Event[Any]]:
    """One concern through `on_concerns_received`: returns the events it would publish instead of emitting them
    (over stores that leave the work's events in it, as the fakes do: `SqlCaseEvents` puts them in the outbox)."""
    before = len(work.emitted)
    await on_concerns_received([event], work=work, routing=routing)
    published = work.emitted[before:]
    del work.emitted[before:]
    return published


async def on_notification_acknowledged(
    event: NotificationAcknowledged, *, work: Work, routing: Routing
) -> list[Event[Any]]:
    """Someone acknowledged: the case records who, and its acknowledgement deadlines stop (no more escalation).

    Only notifications may publish this (server permissions + the consumer edge's subject check), and even then
    the person must be one routing asked to acknowledge the case; their role comes from the school's policy.
    """
    session = work.session
    person_id = event.payload.acknowledged_by
    told = people_told(await routing.case_events.load(session, event.payload.case_id))
    person = routing.policies.current(event.school_id).person(person_id)
    if person is None or person_id not in told:
        document = {"command": "acknowledge", "case_id": event.payload.case_id}
        refused = CommandRefused("not_told", f"{person_id} was not asked to acknowledge this case")
        log_refusal(document, refused)
        return [refusal_event(document, refused, school_id=event.school_id, now=routing.clock())]
    actor = Actor(id=person.id, role=role_in_policy(tuple(role.value for role in person.roles)))
    command = Acknowledge(command="acknowledge", case_id=event.payload.case_id, school_id=event.school_id, actor=actor)
    try:
        _, recorded = await record_command(  # nothing when the case was already acknowledged
            session, command, case_events=routing.case_events, deadlines=routing.deadlines, now=routing.clock()
        )
    except CommandRejected as refused:
        # An acknowledgement the case cannot take (unknown case, or one already closed) stays in the record as
        # notification.acknowledged; retrying it would never succeed, so it is not an error.
        log.warning("acknowledgement by %s not recorded on case %s: %s", actor.id, event.payload.case_id, refused)
        return []
    log.info("case %s acknowledged by %s", event.payload.case_id, actor.id)
    return recorded


def people_told(history: list[Event[Any]]) -> frozenset[str]:
    """Everyone routing asked to act on the case: told at triage, or on an escalation."""
    return frozenset(
        recipient.person_id
        for event in history
        if isinstance(event, CaseTriaged | CaseEscalated)
        for recipient in event.payload.recipients
    )


async def on_deadline_due(due: DueDeadline, *, session: AsyncSession, routing: Routing) -> list[Event[Any]]:
    """A pending deadline's time has come (it fires once): escalate, remind, or note it was already met."""
    now = routing.clock()
    if due.kind == DEFERRED:
        return released(due)
    cause = parse_event(due.detail["cause"])
    if due.kind == ACKNOWLEDGE:
        events, outcome = await _escalate(due, cause=cause, session=session, routing=routing, now=now)
        if outcome == "nobody_left":  # never silent: the standing alert starts
            events = await _standing_alert(due, number=1, cause=cause, session=session, routing=routing, now=now)
    elif due.kind == STANDING_ALERT:
        number = int(due.detail.get("alert_number", 0)) + 1
        events = await _standing_alert(due, number=number, cause=cause, session=session, routing=routing, now=now)
        outcome = "reminded"
    elif due.kind == DEBRIEF_ACTION:
        events, outcome = await remind_debrief_action(
            due,
            session=session,
            case_events=routing.case_events,
            deadlines=routing.deadlines,
            policy=routing.policies.current(due.school_id),
            every=routing.debrief_every,
            cause=cause,
            now=now,
        )
    elif due.kind == POLICY_REVIEW:
        events, outcome = _remind_policy_review(due, cause=cause, routing=routing, now=now), "reminded"
    else:
        plan = routing.policies.current(due.school_id).notifications
        events, outcome = _remind(due, cause=cause, now=now, plan=plan), "reminded"
    reached = DeadlineReached.new(
        DeadlineReachedPayload(
            deadline_id=due.deadline_id, case_id=due.case_id, kind=due.kind, due_at=due.due_at, outcome=outcome
        ),  # type: ignore[arg-type]
        school_id=due.school_id,
        aggregate_id=due.deadline_id,
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
    )
    policy = routing.policies.current(due.school_id)
    return await hold_for_quiet_hours(
        [reached, *events], session=session, deadlines=routing.deadlines, policy=policy, now=now
    )


async def _escalate(
    due: DueDeadline, *, cause: Event[Any], session: AsyncSession, routing: Routing, now: datetime
) -> tuple[list[Event[Any]], str]:
    rung = next_rung(due.detail["ladder"], current=due.detail["rung"])
    if rung is None:
        log.error("case %s: nobody acknowledged and nobody is left to escalate to", due.case_id)
        return [], "nobody_left"
    version = due.detail.get("policy_version")
    policy = (
        routing.policies.current(due.school_id)
        if version is None
        else await routing.policies.version(due.school_id, version, session=session)
    )
    urgency = due.detail["urgency"]
    # The last rung is chased too: if nobody acknowledges by then, the standing alert starts (never silent).
    next_due = acknowledge_by(now, urgency=Urgency(urgency), policy=policy)
    events = escalation_events(
        rung,
        case_id=due.case_id,
        reference=due.detail["reference"],
        urgency=urgency,
        school_id=due.school_id,
        cause=cause,
        now=now,
        next_due=next_due,
        plan=policy.notifications,
    )
    history = await routing.case_events.load(session, due.case_id)
    escalated = [e for e in events if isinstance(e, CaseEscalated)]
    version = await routing.case_events.append(
        session, case_id=due.case_id, events=escalated, expected_version=len(history)
    )
    await routing.case_events.advance(session, case_id=due.case_id, version=version)
    for deadline in (e for e in events if isinstance(e, DeadlineSet)):
        await routing.deadlines.set(
            session,
            deadline_id=deadline.payload.deadline_id,
            school_id=due.school_id,
            case_id=due.case_id,
            kind=ACKNOWLEDGE,
            due_at=deadline.payload.due_at,
            detail={**due.detail, "rung": rung.rung, "cause": deadline.model_dump(mode="json")},
        )
    return events, "escalated"


async def _standing_alert(
    due: DueDeadline, *, number: int, cause: Event[Any], session: AsyncSession, routing: Routing, now: datetime
) -> list[Event[Any]]:
    """Tell everyone on the ladder and the trust's safeguarding lead again, and set the next repeat."""
    log.error("case %s: still unacknowledged after the whole ladder; standing alert %d", due.case_id, number)
    policy = routing.policies.current(due.school_id)
    events = standing_alert_events(
        due.detail,
        case_id=due.case_id,
        school_id=due.school_id,
        number=number,
        every=routing.alert_every,
        policy=policy,
        cause=cause,
        now=now,
    )
    repeat = next_alert(events)
    await routing.deadlines.set(
        session,
        deadline_id=repeat.payload.deadline_id,
        school_id=due.school_id,
        case_id=due.case_id,
        kind=STANDING_ALERT,
        due_at=repeat.payload.due_at,
        detail={**due.detail, "alert_number": number, "cause": repeat.model_dump(mode="json")},
    )
    return events


def _remind(due: DueDeadline, *, cause: Event[Any], now: datetime, plan: NotificationPlan) -> list[Event[Any]]:
    """A case deadline (e.g. consider a LADO referral) has come: remind the people told at triage."""
    recipients = [Recipient.model_validate(r) for r in due.detail.get("told", [])]
    return list(
        notification_requests(
            recipients,
            case_id=due.case_id,
            reference=due.detail.get("reference", ""),
            urgency=due.detail.get("urgency", "high"),
            reason=f"reminder: {due.detail.get('description') or due.kind}",
            rung=0,
            school_id=due.school_id,
            cause=cause,
            now=now,
            plan=plan,
        )
    )


def _remind_policy_review(due: DueDeadline, *, cause: Event[Any], routing: Routing, now: datetime) -> list[Event[Any]]:
    """The policy's review date has come: remind the headteacher and the named governor."""
    policy = routing.policies.current(due.school_id)
    people = [
        Recipient(person_id=p.id, name=p.name, role=role, channels=p.contact)
        for role in (HEADTEACHER, NAMED_GOVERNOR)
        for p in policy.holders(role)
    ]
    reminder = PolicyReviewDue.new(
        PolicyReviewDuePayload(
            version=due.detail["version"],
            review_due=due.detail["review_due"],
            recipients=[PersonRef(person_id=r.person_id, name=r.name, role=r.role.value) for r in people],
        ),
        school_id=due.school_id,
        aggregate_id=f"{due.school_id}:v{due.detail['version']}",
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
    )
    return [
        reminder,
        *notification_requests(
            people,
            case_id=due.case_id,
            reference=policy_review_reference(
                policy.source.title, version=due.detail["version"], review_due=due.detail["review_due"]
            ),
            urgency="medium",
            reason=POLICY_REVIEW_DUE,
            rung=0,
            school_id=due.school_id,
            cause=cause,
            now=now,
            plan=policy.notifications,
        ),
    ]
