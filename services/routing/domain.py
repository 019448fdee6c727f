"""Pure routing logic around the policy engine: a decision becomes events; a due deadline becomes escalation.

No I/O and no clock reads: the time is always an argument. Ids are derived (uuid5) from what caused them, so
working the same input twice yields the same ids and the stores' uniqueness makes the second time a no-op.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from services.routing.policy.decide import ACKNOWLEDGE
from services.routing.policy.decision import Decision, EscalationRung, Recipient
from services.routing.policy.notifying import DEFAULT_PLAN, NotificationPlan
from shared.contracts.envelope import Actor, Event
from shared.contracts.events import (
    CaseEscalated,
    CaseEscalatedPayload,
    CaseOpened,
    CaseOpenedPayload,
    CaseTriaged,
    CaseTriagedPayloadV2,
    ConcernReceived,
    DeadlineRef,
    DeadlineSet,
    DeadlineSetPayload,
    NotificationRequested,
    NotificationRequestedPayloadV2,
    PersonRef,
    PossibleSubjectRef,
)
from shared.tracing import continuing_traceparent

ROUTING = Actor(id="routing", role="service")
_NAMESPACE = uuid.UUID("6f1c2a7e-3b7d-4c1e-9a55-2d0f9f1e8b11")
STANDING_ALERT = "unacknowledged_alert"  # repeats until someone acknowledges; cancelled with ACKNOWLEDGE
_NAMESPACE_BYTES = _NAMESPACE.bytes


def derived_id(*parts: object) -> str:
    """A stable id for something caused by `parts` (the same causes give the same id).

    It is `str(uuid.uuid5(_NAMESPACE, "|".join(map(str, parts))))`, written out: the SHA-1 of the namespace and
    the name, its version and variant bits set, as text (a third of uuid5's time; a test holds them equal)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "|".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def case_id_for(concern: ConcernReceived) -> str:
    return derived_id("case", concern.event_id)


def person_ref(recipient: Recipient) -> PersonRef:
    return PersonRef(person_id=recipient.person_id, name=recipient.name, role=recipient.role.value)


def reachable_by(recipient: Recipient) -> list[tuple[str, str]]:
    """Every (channel, address) the person can be reached on, in the order a fallback tries them."""
    contact = recipient.channels
    every = [("push", recipient.person_id if contact.push else None), ("email", contact.email), ("sms", contact.phone)]
    return [(channel, address) for channel, address in every if address]


def channels_for(recipient: Recipient, *, urgency: str, plan: NotificationPlan = DEFAULT_PLAN) -> list[tuple[str, str]]:
    """(channel, address) pairs the plan wants for `urgency` and the person has; never none while they have one."""
    reachable = dict(reachable_by(recipient))
    wanted = plan.wanted(urgency, prefer=recipient.channels.prefer)
    chosen = [(channel, reachable[channel]) for channel in wanted if channel in reachable]
    return chosen or reachable_by(recipient)[:1]


def notification_id_for(
    case_id: str, *, rung: int, person_id: str, channel: str, repeat: int = 0, topic: str = ""
) -> str:
    """The same notification (case, rung, person, channel, repeat, what about) always has the same id."""
    if topic:
        return derived_id("notification", case_id, topic, person_id, channel, repeat)
    if repeat:
        return derived_id("notification", case_id, rung, person_id, channel, "alert", repeat)
    return derived_id("notification", case_id, rung, person_id, channel)


def policy_review_reference(title: str, *, version: int, review_due: str) -> str:
    """How a policy-review reminder names the policy: "Social Media Policy v1, due 31 Oct 2022"."""
    due = date.fromisoformat(review_due)
    return f"{title} v{version}, due {due.day} {due:%b %Y}"


def notification_requests(
    recipients: Iterable[Recipient],
    *,
    case_id: str,
    reference: str,
    urgency: str,
    reason: str,
    rung: int,
    school_id: str,
    cause: Event[Any],
    now: datetime,
    only_channel: str | None = None,
    plan: NotificationPlan = DEFAULT_PLAN,
    repeat: int = 0,
    topic: str = "",
) -> list[NotificationRequested]:
    """One request per person per channel (or on `only_channel`); ids are derived so a re-run requests nothing new."""
    requests = []
    traceparent = continuing_traceparent(cause.traceparent)
    for recipient in recipients:
        person = person_ref(recipient)
        chosen = channels_for(recipient, urgency=urgency, plan=plan)
        if only_channel is not None:
            chosen = [(channel, address) for channel, address in reachable_by(recipient) if channel == only_channel]
        for channel, address in chosen:
            notification_id = notification_id_for(
                case_id, rung=rung, person_id=recipient.person_id, channel=channel, repeat=repeat, topic=topic
            )
            requests.append(
                NotificationRequested.new(
                    NotificationRequestedPayloadV2(
                        notification_id=notification_id,
                        case_id=case_id,
                        reference=reference,
                        recipient=person,
                        channel=channel,  # type: ignore[arg-type]
                        address=address,
                        urgency=urgency,  # type: ignore[arg-type]
                        reason=reason,
                        escalation_rung=rung,
                    ),
                    school_id=school_id,
                    aggregate_id=notification_id,
                    actor=ROUTING,
                    occurred_at=now,
                    cause=cause,
                    traceparent=traceparent,
                    continued=True,
                )
            )
    return requests


def deadline_event(
    *,
    case_id: str,
    kind: str,
    due_at: datetime,
    description: str,
    rung: int,
    school_id: str,
    cause: Event[Any],
    now: datetime,
    traceparent: str | None = None,
) -> DeadlineSet:
    """The deadline (`traceparent`: the cause's continued, when the caller has it already)."""
    deadline_id = derived_id("deadline", case_id, kind, rung)
    return DeadlineSet.new(
        DeadlineSetPayload(
            deadline_id=deadline_id,
            case_id=case_id,
            kind=kind,
            due_at=due_at,
            description=description,
            escalation_rung=rung,
        ),
        school_id=school_id,
        aggregate_id=deadline_id,
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
        traceparent=traceparent if traceparent is not None else continuing_traceparent(cause.traceparent),
        continued=True,
    )


def triage_events(
    concern: ConcernReceived,
    decision: Decision,
    *,
    now: datetime,
    plan: NotificationPlan = DEFAULT_PLAN,
    case_id: str | None = None,
) -> list[Event[Any]]:
    """Everything routing announces about a new concern: case opened and triaged, who is told, by when."""
    case_id = case_id or case_id_for(concern)
    reference = concern.payload.reference
    traceparent = continuing_traceparent(concern.traceparent)
    common: dict[str, Any] = {
        "school_id": concern.school_id,
        "aggregate_id": case_id,
        "actor": ROUTING,
        "occurred_at": now,
        "cause": concern,
        "traceparent": traceparent,
        "continued": True,
    }
    opened = CaseOpened.new(
        CaseOpenedPayload(
            case_id=case_id,
            reference=reference,
            concern_event_id=str(concern.event_id),
            kind=concern.payload.kind,
            policy_version=decision.policy_version,
        ),
        **common,
    )
    triaged = CaseTriaged.new(
        CaseTriagedPayloadV2(
            case_id=case_id,
            reference=reference,
            category=decision.category,
            urgency=decision.urgency.value,  # type: ignore[arg-type]
            rule_ids=list(decision.rule_ids),
            policy_version=decision.policy_version,
            policy_digest=decision.policy_digest,
            notify_roles=[role.value for role in decision.notify_roles],
            recipients=[person_ref(r) for r in decision.recipients],
            parents=decision.parent_notification.decision.value,  # type: ignore[arg-type]
            parents_reason=decision.parent_notification.reason,
            deadlines=[
                DeadlineRef(kind=d.kind, due_at=d.due_at, description=d.description) for d in decision.deadlines
            ],
            guidance=list(decision.guidance),
            safety_floor=list(decision.safety_floor),
            formal_record_required=decision.formal_record_required,
            subject_person_ids=list(decision.subject_person_ids),
            possible_subjects=[PossibleSubjectRef(**p.model_dump()) for p in decision.possible_subjects],
            subject_to_confirm=decision.subject_to_confirm,
            subject_notes=list(decision.subject_notes),
            alerts=list(decision.alerts),
        ),
        **common,
    )
    reason = "rules " + ", ".join(decision.rule_ids) if decision.rule_ids else "no rule matched: DSL triage"
    events: list[Event[Any]] = [opened, triaged]
    events += notification_requests(
        decision.recipients,
        case_id=case_id,
        reference=reference,
        urgency=decision.urgency.value,
        reason=reason,
        rung=0,
        school_id=concern.school_id,
        cause=concern,
        now=now,
        plan=plan,
    )
    events += [
        deadline_event(
            case_id=case_id,
            kind=d.kind,
            due_at=d.due_at,
            description=d.description,
            rung=0,
            school_id=concern.school_id,
            cause=concern,
            now=now,
            traceparent=traceparent,
        )
        for d in decision.deadlines
    ]
    return events


def ladder_as_data(ladder: Iterable[EscalationRung]) -> list[dict[str, Any]]:
    """The escalation ladder as JSON, kept with the acknowledgement deadline so firing needs no re-decision."""
    return [rung.model_dump(mode="json") for rung in ladder]


def next_rung(ladder: list[dict[str, Any]], *, current: int) -> EscalationRung | None:
    """The rung after `current` (0 = those told at triage), or None when everyone has been told."""
    for data in ladder:
        rung = EscalationRung.model_validate(data)
        if rung.rung == current + 1:
            return rung
    return None


def escalation_events(
    rung: EscalationRung,
    *,
    case_id: str,
    reference: str,
    urgency: str,
    school_id: str,
    cause: Event[Any],
    now: datetime,
    next_due: datetime | None,
    plan: NotificationPlan = DEFAULT_PLAN,
) -> list[Event[Any]]:
    """Tell the next rung, record the escalation on the case, and set the next acknowledgement deadline."""
    reason = f"escalation: nobody acknowledged in time (rung {rung.rung}, {rung.role.value})"
    events: list[Event[Any]] = [
        CaseEscalated.new(
            CaseEscalatedPayload(
                case_id=case_id,
                reference=reference,
                from_rung=rung.rung - 1,
                to_rung=rung.rung,
                recipients=[person_ref(r) for r in rung.recipients],
                reason=reason,
            ),
            school_id=school_id,
            aggregate_id=case_id,
            actor=ROUTING,
            occurred_at=now,
            cause=cause,
        )
    ]
    events += notification_requests(
        rung.recipients,
        case_id=case_id,
        reference=reference,
        urgency=urgency,
        reason=reason,
        rung=rung.rung,
        school_id=school_id,
        cause=cause,
        now=now,
        plan=plan,
    )
    if next_due is not None:
        events.append(
            deadline_event(
                case_id=case_id,
                kind=ACKNOWLEDGE,
                due_at=next_due,
                description="Acknowledge the escalated concern.",
                rung=rung.rung,
                school_id=school_id,
                cause=cause,
                now=now,
            )
        )
    return events
