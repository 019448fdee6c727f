"""Quarantined reports reach a person: the school's DSL hears that reports could not be accepted, never what they said.

Counted per school in windows of the standing-alert interval (the dead-letter counting); the DSL is told once per
window, at its first quarantine, with how many the window before held, so a flood is one alert every few minutes.
"""

from __future__ import annotations

import logging
from typing import Any

from services.routing.domain import derived_id
from services.routing.handlers import Routing
from services.routing.operations import alert_dsls, window_start
from services.routing.policy_book import UnknownSchool
from services.routing.store import count_dead_letter, dead_letters_in
from shared.contracts.envelope import Event
from shared.contracts.events import IntakeQuarantined
from shared.unit_of_work import Work

log = logging.getLogger(__name__)

# The counter's key in the dead-letter window table: quarantines are counted apart from any consumer's dead letters.
COUNTER = "intake.quarantined"


async def on_intake_quarantined(event: IntakeQuarantined, *, work: Work, routing: Routing) -> list[Event[Any]]:
    """Count the quarantine; at the first in a window, ask for one alert to the school's DSL with a count."""
    now = routing.clock()
    start = window_start(now, every=routing.alert_every)
    count = await count_dead_letter(work.session, school_id=event.school_id, consumer=COUNTER, window_start=start)
    if count != 1:
        return []
    try:
        policy = routing.policies.current(event.school_id)
    except UnknownSchool:  # nobody to tell: the raw input stays quarantined in intake, the log line says so
        log.error("quarantined raw input %s at unknown school %s: nobody to tell", event.aggregate_id, event.school_id)
        return []
    earlier = await dead_letters_in(
        work.session, school_id=event.school_id, consumer=COUNTER, window_start=start - routing.alert_every
    )
    reports = "1 report" if earlier == 0 else f"{earlier + 1} reports"
    return alert_dsls(
        policy,
        cause=event,
        alert_id=derived_id("quarantines", event.school_id, start),
        reference=f"{reports} that could not be accepted (quarantined at intake since {start:%H:%M} UTC)",
        reason=f"ops: reports quarantined ({event.payload.reason_code})",
        now=now,
    )
