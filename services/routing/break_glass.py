"""Break-glass reaches the DSLs: who opened which case outside their need to know, and when; never its content.

The console records a break-glass view as `record.viewed` with `break_glass` set and the stated reason; routing
reads those events and asks for one operational alert to each of the school's DSLs (the one who broke glass
left out). The alert names the viewer's person id, the case reference and the time; the reason stays in the
audit record, where the DSL reads it.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from services.routing.domain import derived_id
from services.routing.handlers import Routing
from services.routing.operations import alert_dsls
from services.routing.policy_book import UnknownSchool
from services.routing.store import cases
from shared.contracts.envelope import Event
from shared.contracts.record_events import RecordViewed
from shared.unit_of_work import Work

log = logging.getLogger(__name__)

REASON = "ops: break glass"


async def on_record_viewed(event: RecordViewed, *, work: Work, routing: Routing) -> list[Event[Any]]:
    """Alert the school's DSLs to a break-glass view of a case; every other view asks for nothing."""
    viewed = event.payload
    if not viewed.break_glass or viewed.record_kind != "case":
        return []
    try:
        policy = routing.policies.current(event.school_id)
    except UnknownSchool:
        log.error("break-glass view of case %s at unknown school %s: nobody to tell", viewed.record_id, event.school_id)
        return []
    reference = await work.session.scalar(sa.select(cases.c.reference).where(cases.c.case_id == viewed.record_id))
    return alert_dsls(
        policy,
        cause=event,
        alert_id=derived_id("break-glass", event.event_id),
        reference=f"{reference or viewed.record_id} opened by {event.actor.id} at {event.occurred_at:%H:%M} UTC",
        reason=REASON,
        now=routing.clock(),
        leave_out=event.actor.id,
    )
