"""Quiet hours against real NATS + PostgreSQL: a medium concern reported at night is told when they end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.settings import Settings
from tests.integration.test_timers import Clock, a_concern_for_the_dsl_alone, start, stop
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
NIGHT = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 23:30 in London (BST): St Mark's quiet hours are 21:00-07:00
MORNING = datetime(2026, 6, 11, 6, 0, 1, tzinfo=UTC)  # just after 07:00 in London


async def test_a_medium_concern_at_night_is_told_at_the_end_of_quiet_hours_not_before(settings: Settings) -> None:
    clock = Clock()
    clock.now = NIGHT
    service = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            await publish_raw(js, settings, a_concern_for_the_dsl_alone())
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            assert triaged.payload.urgency == "medium"
            assert await service.scheduler.fire_due() == 0
            case_id = triaged.payload.case_id

            async def told() -> list:
                return [
                    e
                    for e in await stream_events(js, settings, "notification.requested")
                    if e.payload.case_id == case_id
                ]

            assert await told() == [], "held, not sent at night"
            clock.now = MORNING
            assert await service.scheduler.fire_due() >= 1  # the case's, and the overdue policy review reminder
            requested = await eventually(told, what="told")
            assert await service.scheduler.fire_due() == 0, "released once"
    finally:
        await stop(service)
    assert {e.payload.recipient.person_id for e in requested} == {r.person_id for r in triaged.payload.recipients}
    assert sorted(e.payload.channel for e in requested) == ["email", "push"]  # medium: push and email
