"""The console's read model through the broker (real NATS + PostgreSQL): each event kept once however often it is
delivered, as it was published, with nothing claimed in the console's inbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from services.console.store import case_entries, concerns
from shared.contracts.events import NotificationSent, NotificationSentPayload
from shared.settings import Settings
from shared.subjects import CONSOLE_READ_MODEL
from tests.support.console import ROUTING, console_running, open_case, projected
from tests.support.running import jetstream, publish_raw
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_each_event_delivered_twice_is_kept_once_as_published_and_nothing_is_claimed(settings: Settings) -> None:
    async with console_running(settings) as console, jetstream(settings) as (_, js):
        case = await open_case(js, settings)
        opened = case.events[0]
        sent = NotificationSent.new(
            NotificationSentPayload(
                notification_id="n-1", case_id=case.case_id, channel="email", recipient_person_id="s-bird"
            ),
            school_id=case.school_id,
            aggregate_id="n-1",
            actor=ROUTING,
            occurred_at=opened.occurred_at,
            cause=opened,
        )
        await publish_raw(js, settings, sent)
        await projected(console, case.case_id)
        concern_id = opened.payload.concern_event_id
        for event in [*case.events, sent]:  # delivered again (a new message id: past the broker's dedupe)
            await publish_raw(js, settings, event, msg_id=f"again:{event.event_id}")
        await eventually(
            lambda: js.consumer_info(settings.stream_name, CONSOLE_READ_MODEL),
            until=lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            what="the console's consumer drained",
        )
        async with console.runtime.sessions() as session:
            kept = await session.execute(
                sa.select(case_entries.c.event_id, case_entries.c.body)
                .where(case_entries.c.case_id == case.case_id)
                .order_by(case_entries.c.position)
            )
            concern_rows = await session.scalar(
                sa.select(sa.func.count()).select_from(concerns).where(concerns.c.event_id == concern_id)
            )
            claimed = await session.scalar(sa.select(sa.func.count()).select_from(console.runtime.tables.inbox))
    assert [(row.event_id, row.body) for row in kept] == [(e.event_id, as_json(e)) for e in [*case.events, sent]]
    assert concern_rows == 1
    assert claimed == 0


def as_json(event: Any) -> Any:
    return json.loads(event.to_json())
