"""Routing's side of messaging parents: the school's words for a case, and the one request that sends them.

The case workflow (services/routing/case/parents.py) decides whether a message may go; this module finds the
words under the case's own policy version and turns each `case.parents_informed` into `notification.requested`
v2 to a parent or carer. That request carries the school's words and the case reference only: no rule, no
category, no name but the parent's own (for the record; the message never quotes it), no link and no rung, so
the parent is never asked to acknowledge and never escalated to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.case.parents import PARENT_ROLE
from services.routing.case.state import CaseState
from services.routing.domain import ROUTING
from services.routing.policy_book import PolicyBook, UnknownSchool
from shared.contracts.case_events import CaseParentsInformed
from shared.contracts.envelope import Event
from shared.contracts.events import NotificationRequested, NotificationRequestedPayloadV2, PersonRef
from shared.contracts.parent_message import ParentMessage

PARENTS_INFORMED = "parents_informed"  # the request's reason: why this person (never which rule)


async def parent_words(state: CaseState, *, policies: PolicyBook, session: AsyncSession) -> ParentMessage | None:
    """The school's words to parents under the policy version the case was routed by; None when it has none."""
    try:
        policy = await policies.version(state.school_id, state.policy_version, session=session)
    except UnknownSchool:
        return None
    return policy.parent_message()


def parent_requests(events: Iterable[Event[Any]], *, state: CaseState) -> list[NotificationRequested]:
    """One notification request for each parent or carer the events record as informed."""
    return [
        NotificationRequested.new(
            NotificationRequestedPayloadV2(
                notification_id=informed.payload.notification_id,
                case_id=informed.payload.case_id,
                reference=state.reference,
                recipient=PersonRef(person_id=informed.payload.parent_id, name=informed.payload.name, role=PARENT_ROLE),
                channel=informed.payload.channel,
                address=informed.payload.address,
                urgency=state.urgency or "medium",  # type: ignore[arg-type]
                reason=PARENTS_INFORMED,
                escalation_rung=0,
                parent_message=informed.payload.words,
            ),
            school_id=informed.school_id,
            aggregate_id=informed.payload.notification_id,
            actor=ROUTING,
            occurred_at=informed.occurred_at,
            cause=informed,
        )
        for informed in events
        if isinstance(informed, CaseParentsInformed)
    ]
