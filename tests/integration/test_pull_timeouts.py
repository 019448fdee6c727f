"""A pull fetch that finds nothing times out with nats' documented error, which faststream's pull loop expects."""

from __future__ import annotations

import nats.errors

from shared.messaging import ensure_streams, make_broker
from shared.settings import Settings
from tests.support.running import jetstream


async def test_every_empty_fetch_times_out_with_the_documented_error(settings: Settings) -> None:
    make_broker(settings, service="test")  # what every service does first
    seen: list[type[BaseException]] = []
    async with jetstream(settings) as (_, js):
        await ensure_streams(js, settings)
        subscription = await js.pull_subscribe(f"{settings.subject_root}.nobody.>", durable="quiet")
        for attempt in range(200):  # short deadlines, like faststream's remaining time in a batch
            try:
                await subscription.fetch(8, timeout=0.0005 * (attempt % 20 + 1))
            except TimeoutError as timeout:
                seen.append(type(timeout))
    assert seen and set(seen) == {nats.errors.TimeoutError}
