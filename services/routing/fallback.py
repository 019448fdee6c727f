"""When a notification fails for good: try the person's next channel, or, when they cannot be reached, move on.

Pure: which channels were asked for and which failed come in; a step comes out. Routing acts on it at once
instead of waiting for the acknowledgement deadline (issue 10, item 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.routing.domain import channels_for, notification_id_for, reachable_by
from services.routing.policy.decision import EscalationRung, Recipient
from services.routing.policy.notifying import DEFAULT_PLAN, NotificationPlan


@dataclass(frozen=True)
class Fallback:
    """`wait` (a channel may still get through), `try` `channel` next, or `unreachable` (escalate now)."""

    step: Literal["wait", "try", "unreachable"]
    channel: str = ""


def next_channel(
    recipient: Recipient,
    *,
    urgency: str,
    case_id: str,
    rung: int,
    failed_ids: set[str],
    plan: NotificationPlan = DEFAULT_PLAN,
) -> Fallback:
    """The person's channels were chosen for the urgency; fallbacks follow in order, one at a time."""

    def failed(channel: str) -> bool:
        return notification_id_for(case_id, rung=rung, person_id=recipient.person_id, channel=channel) in failed_ids

    asked = [channel for channel, _ in channels_for(recipient, urgency=urgency, plan=plan)]
    for channel, _ in reachable_by(recipient):
        if not all(failed(c) for c in asked):
            return Fallback("wait")
        if channel not in asked:
            asked.append(channel)
            if not failed(channel):
                return Fallback("try", channel)
    return Fallback("wait") if not all(failed(c) for c in asked) else Fallback("unreachable")


def people_at_rung(detail: dict[str, Any], *, rung: int) -> list[Recipient]:
    """Who was told at `rung` of an acknowledgement deadline's ladder (0: those told at triage)."""
    if rung == 0:
        return [Recipient.model_validate(r) for r in detail.get("told", [])]
    for data in detail.get("ladder", []):
        step = EscalationRung.model_validate(data)
        if step.rung == rung:
            return list(step.recipients)
    return []
