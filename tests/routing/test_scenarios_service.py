"""The same scenario table through the running routing service (real NATS + PostgreSQL): case.triaged agrees."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.routing.app import RoutingService
from services.routing.policy import load_policy
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import CaseTriaged, ConcernReceived
from shared.settings import Settings
from tests.routing.test_scenarios import ALL, assert_as_expected
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def as_route_output(triaged: CaseTriaged) -> dict[str, Any]:
    """case.triaged in the shape the `route` command prints, so one comparison serves both."""
    payload = triaged.payload
    return {
        "rule_ids": payload.rule_ids,
        "category": payload.category,
        "urgency": payload.urgency,
        "parents": payload.parents,
        "notify": payload.notify_roles,
        "recipients": [r.model_dump() for r in payload.recipients],
        "deadlines": [d.model_dump(mode="json") for d in payload.deadlines],
        "formal_record_required": payload.formal_record_required,
        "subjects": payload.subject_person_ids,
        "possible_subjects": [p.model_dump() for p in payload.possible_subjects],
        "subject_to_confirm": payload.subject_to_confirm,
    }


async def all_triaged(js, settings: Settings) -> dict[str, CaseTriaged]:
    return {event.payload.reference: event for event in await stream_events(js, settings, "case.triaged")}


async def test_the_routing_service_triages_every_scenario_as_the_table_says(settings: Settings) -> None:
    [policy_path] = {s.policy_path for s in ALL}
    school_id = load_policy(policy_path).school.id
    settings = settings.model_copy(update={"policy_dir": str(policy_path.parent)})
    service = RoutingService(settings)
    await service.start()
    await service.runtime.broker.start()
    try:
        async with jetstream(settings) as (_, js):
            for scenario in ALL:
                concern = ConcernReceived.new(
                    scenario.concern,
                    school_id=school_id,
                    aggregate_id=scenario.concern.reference,
                    actor=Actor(id="scenario", role="test"),
                    occurred_at=utc_now(),
                    event_id=uuid.uuid4(),
                )
                await publish_raw(js, settings, concern)
            triaged = await eventually(
                lambda: all_triaged(js, settings),
                until=lambda found: len(found) == len(ALL),
                timeout=60,
                what=f"{len(ALL)} cases triaged",
            )
    finally:
        await service.runtime.broker.stop()
        await service.stop()
    for scenario in ALL:
        event = triaged[scenario.concern.reference]
        assert event.payload.policy_version == 1
        assert_as_expected(as_route_output(event), scenario.expect, scenario=scenario.concern.summary)
