"""Never silent: when the escalation ladder runs out, a standing alert repeats until someone acknowledges.

Everyone on the ladder and the trust's safeguarding lead are told again at a fixed interval, each time as a
`case.unacknowledged` event and a notification per person and channel. The next repeat is a deadline row
(kind `unacknowledged_alert`), so it survives restarts and fires once; an acknowledgement cancels it with
the acknowledgement deadlines (commands.record_command).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.routing.domain import (
    ROUTING,
    STANDING_ALERT,
    deadline_event,
    notification_requests,
    person_ref,
)
from services.routing.fallback import people_at_rung
from services.routing.policy.decision import EscalationRung, Recipient
from services.routing.policy.floor import TRUST_LEAD
from services.routing.policy.model import Policy
from shared.contracts.envelope import Event
from shared.contracts.events import CaseUnacknowledged, CaseUnacknowledgedPayload, DeadlineSet


def everyone_on_the_ladder(detail: dict[str, Any], *, policy: Policy) -> list[Recipient]:
    """Those told at triage, every rung after, and the trust's safeguarding lead, each once."""
    ladder = [EscalationRung.model_validate(data) for data in detail.get("ladder", [])]
    people = [*people_at_rung(detail, rung=0), *(p for rung in ladder for p in rung.recipients)]
    people += [
        Recipient(person_id=p.id, name=p.name, role=TRUST_LEAD, channels=p.contact) for p in policy.holders(TRUST_LEAD)
    ]
    return list({person.person_id: person for person in people}.values())


def standing_alert_events(
    detail: dict[str, Any],
    *,
    case_id: str,
    school_id: str,
    number: int,
    every: timedelta,
    policy: Policy,
    cause: Event[Any],
    now: datetime,
) -> list[Event[Any]]:
    """Alert number `number`: the event, a notification to everyone, and the deadline for the next one."""
    recipients = everyone_on_the_ladder(detail, policy=policy)
    beyond_the_ladder = 1 + max((int(r.get("rung", 0)) for r in detail.get("ladder", [])), default=0)
    urgency = detail["urgency"]
    reference = detail.get("reference", "")
    alert = CaseUnacknowledged.new(
        CaseUnacknowledgedPayload(
            case_id=case_id,
            reference=reference,
            urgency=urgency,
            alert_number=number,
            recipients=[person_ref(r) for r in recipients],
            repeats_every_minutes=every.total_seconds() / 60,
        ),
        school_id=school_id,
        aggregate_id=case_id,
        actor=ROUTING,
        occurred_at=now,
        cause=cause,
    )
    requests = notification_requests(
        recipients,
        case_id=case_id,
        reference=reference,
        urgency=urgency,
        reason=f"unacknowledged: everyone on the ladder was told and nobody acknowledged (alert {number})",
        rung=beyond_the_ladder,
        school_id=school_id,
        cause=cause,
        now=now,
        plan=policy.notifications,
        repeat=number,
    )
    repeat = deadline_event(
        case_id=case_id,
        kind=STANDING_ALERT,
        due_at=now + every,
        description="Nobody has acknowledged: the alert repeats until someone does.",
        rung=number,
        school_id=school_id,
        cause=cause,
        now=now,
    )
    return [alert, *requests, repeat]


def next_alert(events: list[Event[Any]]) -> DeadlineSet:
    """The deadline for the next repeat, among an alert's events."""
    return next(e for e in events if isinstance(e, DeadlineSet) and e.payload.kind == STANDING_ALERT)
