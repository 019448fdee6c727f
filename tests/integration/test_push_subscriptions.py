"""Push subscriptions against PostgreSQL: lookups made together share one statement and each gets its own."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.notifications.app import create_app
from services.notifications.subscriptions import PushSubscription, SqlPushSubscriptions
from shared.contracts.envelope import utc_now
from shared.settings import Settings
from tests.support.running import running

pytestmark = pytest.mark.integration


def browser(n: int) -> PushSubscription:
    return PushSubscription(f"https://push.invalid/{n}", p256dh=f"key-{n}", auth=f"auth-{n}")


async def test_lookups_made_together_each_get_that_persons_browsers_oldest_first(settings: Settings) -> None:
    _app, runtime = create_app(settings)
    async with running(runtime, subscribers=False):
        store = SqlPushSubscriptions(runtime.sessions)
        now = utc_now()
        await store.save(browser(2), person_id="p-lead", at=now)
        await store.save(browser(1), person_id="p-lead", at=now - timedelta(minutes=1))
        await store.save(browser(3), person_id="p-deputy", at=now)
        found = await asyncio.gather(*(store.for_person(p) for p in ("p-lead", "p-nobody", "p-deputy", "p-lead")))
    assert [[s.endpoint for s in subscriptions] for subscriptions in found] == [
        ["https://push.invalid/1", "https://push.invalid/2"],
        [],
        ["https://push.invalid/3"],
        ["https://push.invalid/1", "https://push.invalid/2"],
    ]
