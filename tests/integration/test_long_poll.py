"""A consumer's pull keeps one request open on the server: an idle consumer costs a request a second, not hundreds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from nats.aio.msg import Msg

from shared.long_poll import LongPoll
from shared.messaging import ensure_streams
from shared.settings import Settings
from tests.support.running import jetstream

pytestmark = pytest.mark.integration


async def test_an_idle_fetch_waits_on_one_request_and_returns_as_soon_as_a_message_comes(settings: Settings) -> None:
    async with jetstream(settings) as (client, js):
        await ensure_streams(js, settings)
        subject = f"{settings.subject_root}.st-marks.poll.test"
        subscription = await js.pull_subscribe(subject, durable="long-poll")
        requests: list[bytes] = []
        watch = await client.subscribe(
            f"$JS.API.CONSUMER.MSG.NEXT.{settings.stream_name}.long-poll", cb=_recorder(requests)
        )
        poll = LongPoll(subscription, idle_seconds=0.5)
        fetching = asyncio.create_task(poll.fetch(16, timeout=0.01))
        await asyncio.sleep(1.2)  # idle: a faststream loop with nats-py's fetch would have sent ~240 requests
        assert not fetching.done()
        published_at = time.monotonic()
        await js.publish(subject, b"one")
        messages = await asyncio.wait_for(fetching, timeout=5)
        waited = time.monotonic() - published_at
        await watch.unsubscribe()
    assert [m.data for m in messages] == [b"one"]
    assert waited < 0.3, f"the message waited {waited:.3f}s after it was published"
    assert 2 <= len(requests) <= 5, f"{len(requests)} pull requests in 1.2 s idle"


async def test_a_fetch_gathers_what_arrives_within_its_window_up_to_the_batch(settings: Settings) -> None:
    async with jetstream(settings) as (_, js):
        await ensure_streams(js, settings)
        subject = f"{settings.subject_root}.st-marks.poll.batch"
        subscription = await js.pull_subscribe(subject, durable="long-poll-batch")
        for number in range(12):
            await js.publish(subject, str(number).encode())
        poll = LongPoll(subscription)
        first = await poll.fetch(5, timeout=0.05)
        rest = await poll.fetch(50, timeout=0.05)
        for message in [*first, *rest]:
            await message.ack()
    assert [m.data for m in first] == [b"0", b"1", b"2", b"3", b"4"]
    assert [m.data for m in rest] == [str(n).encode() for n in range(5, 12)]


async def test_a_quiet_consumer_hands_a_lone_message_over_at_once_and_a_busy_one_waits_for_more(
    settings: Settings,
) -> None:
    async with jetstream(settings) as (_, js):
        await ensure_streams(js, settings)
        subject = f"{settings.subject_root}.st-marks.poll.gather"
        subscription = await js.pull_subscribe(subject, durable="long-poll-gather")
        poll = LongPoll(subscription)
        quiet = asyncio.create_task(poll.gather(16, window=0.5))
        await asyncio.sleep(0.7)  # longer than the window: the consumer is not busy
        published_at = time.monotonic()
        await js.publish(subject, b"lone")
        lone = await asyncio.wait_for(quiet, timeout=5)
        handed_over = time.monotonic() - published_at

        busy = asyncio.create_task(poll.gather(16, window=0.5))
        await js.publish(subject, b"first")  # comes at once: the consumer is busy, so it waits for more
        await asyncio.sleep(0.1)
        await js.publish(subject, b"second")
        batch = await asyncio.wait_for(busy, timeout=5)
        for message in [*lone, *batch]:
            await message.ack()
    assert [m.data for m in lone] == [b"lone"]
    assert handed_over < 0.3, f"a lone message waited {handed_over:.3f}s"
    assert [m.data for m in batch] == [b"first", b"second"]


def _recorder(requests: list[bytes]) -> Callable[[Msg], Awaitable[None]]:
    async def record(message: Msg) -> None:
        requests.append(message.data)

    return record
