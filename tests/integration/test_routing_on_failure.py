"""Routing moves on at once when a notification fails for good: the person's next channel, then the next rung,
without waiting for the acknowledgement deadline (routing's clock never moves in this test)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import Settings
from tests.integration.test_timers import Clock, a_concern_for_the_dsl_alone, start, stop
from tests.support.factories import failure_of
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_a_dsl_unreachable_on_every_channel_escalates_before_the_deadline(settings: Settings) -> None:
    clock = Clock()
    service = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            await publish_raw(js, settings, a_concern_for_the_dsl_alone())
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            dsl = triaged.payload.recipients[0].person_id
            failed: set[str] = set()
            tried: list[str] = []

            async def fail_what_was_asked() -> list[Any]:
                """Fail every request to the DSL so far; returns the escalations seen."""
                for request in await stream_events(js, settings, "notification.requested"):
                    payload = request.payload
                    if payload.recipient.person_id == dsl and payload.notification_id not in failed:
                        failed.add(payload.notification_id)
                        tried.append(payload.channel)
                        await publish_raw(js, settings, failure_of(request))
                return await stream_events(js, settings, "case.escalated")

            [escalated] = await eventually(fail_what_was_asked, what="escalation on failure")
            requested = await stream_events(js, settings, "notification.requested")
    finally:
        await stop(service)
    to_dsl = [e.payload for e in requested if e.payload.recipient.person_id == dsl]
    assert sorted(tried) == ["email", "push", "sms"], "every channel the DSL has, each once"
    if triaged.payload.urgency == "medium":  # SMS is not asked for at triage, so it came as the fallback
        [sms] = [p for p in to_dsl if p.channel == "sms"]
        assert sms.reason.startswith("fallback") and sms.escalation_rung == 0
    assert escalated.payload.to_rung == 1 and clock.now < triaged.payload.deadlines[0].due_at
    deputies = {r.person_id for r in escalated.payload.recipients}
    assert {e.payload.recipient.person_id for e in requested if e.payload.escalation_rung == 1} == deputies
