"""A consumer's pull that waits on the server for work instead of asking for it a hundred times a second.

faststream's batch pull loop calls `fetch(batch, timeout=window)` again and again; nats-py answers each empty
call with two pull requests (a no-wait probe, then a request lingering for the rest of the window) and two
status replies. With a 10 ms window that is ~400 messages a second per idle consumer, in every service and in
nats-server: more than half a core for a system doing nothing, and the same again under load.

`LongPoll` keeps one pull request open on the server for up to `idle_seconds` (renewed when it is used up or
expires), so messages are pushed to the subscription while a batch is being handled. A fetch waits as long as it
takes for the first message and takes what is already there. A busy consumer (its first message came within the
batch window) also waits up to the window for more, so batches stay full under load (and what arrived while the
previous batch was handled is there already: natural batching); after a quiet spell it hands a lone message over
at once, so a hop at low load costs no fixed wait. An idle consumer costs one request a second.

faststream's loop asks again while its own deadline lasts (`PullSub(timeout=...)`); `long_poll` answers that
second call with what is queued by then, or ends the round (nats' TimeoutError, which the loop expects) so the
batch in hand is handled at once instead of waiting for the next message.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StatusCode

IDLE_SECONDS = 1.0
# The server ends an idle request with a 408 status; until that arrives the request counts as open.
_GRACE_SECONDS = 0.25


class LongPoll:
    """`fetch` for one pull subscription: a lingering pull request kept open, batches gathered within a window."""

    def __init__(self, subscription: JetStreamContext.PullSubscription, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._subscription = subscription
        self._idle = idle_seconds
        self._open_until = 0.0  # when the open request expires (monotonic); 0: none open
        self._open_for = 0  # messages the open request may still deliver

    async def fetch(self, batch: int = 1, timeout: float | None = None, heartbeat: float | None = None) -> list[Msg]:
        """Up to `batch` messages: waits for the first however long it takes, then `timeout` at most for more."""
        messages = await self._first(batch)
        return await self._gather(messages, batch, until=time.monotonic() + (timeout or 0.0))

    async def gather(self, batch: int, *, window: float) -> list[Msg]:
        """A consumer's next batch: the first message however long it takes, then what else is already there.

        When that first message came within `window` (the consumer is busy: messages keep coming, or were waiting),
        it also waits up to `window` for more, so batches stay full under load; after a quiet spell it does not,
        so a lone message is handed over at once and a hop at low load costs no fixed wait."""
        started = time.monotonic()
        messages = await self._first(batch)
        now = time.monotonic()
        busy = now - started < window
        return await self._gather(messages, batch, until=now + window if busy else now)

    async def _first(self, batch: int) -> list[Msg]:
        queue = self._subscription._sub._pending_queue
        while True:
            await self._keep_request_open(batch)
            message = await self._next(queue, until=self._open_until)
            if message is not None:
                return [message]

    async def _gather(self, messages: list[Msg], batch: int, *, until: float) -> list[Msg]:
        """`messages` and what else is delivered before `until` (what is already queued when that has passed)."""
        queue = self._subscription._sub._pending_queue  # nats-py keeps delivered messages here
        while len(messages) < batch:
            if queue.empty():
                if time.monotonic() >= until:
                    break
                await self._keep_request_open(batch - len(messages))
            message = await self._next(queue, until=until)
            if message is None:
                break
            messages.append(message)
        return messages

    async def take_queued(self, batch: int) -> list[Msg]:
        """Up to `batch` messages already delivered to this subscription, without waiting for any."""
        queue = self._subscription._sub._pending_queue
        messages: list[Msg] = []
        while len(messages) < batch and not queue.empty():
            message = await self._next(queue, until=0.0)
            if message is None:
                break
            messages.append(message)
        return messages

    async def _keep_request_open(self, batch: int) -> None:
        """Ask the server for `batch` messages over the next `idle` seconds, unless a request is still open."""
        now = time.monotonic()
        if self._open_for > 0 and now < self._open_until:
            return
        subscription = self._subscription
        request = {"batch": batch, "expires": int(self._idle * 1_000_000_000)}
        await subscription._nc.publish(  # the request nats-py's own fetch sends
            subscription._nms,
            json.dumps(request).encode(),
            subscription._deliver,
        )
        self._open_until = now + self._idle + _GRACE_SECONDS
        self._open_for = batch

    async def _next(self, queue: asyncio.Queue[Msg], *, until: float) -> Msg | None:
        """The next message for the handler, or None once `until` passes or the open request ends."""
        sub = self._subscription._sub
        while True:
            if queue.empty():
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    # Not wait_for: on Python 3.11 it can lose a cancellation (the subscriber's stop) that arrives
                    # as a message does; an unfinished get leaves its message in the queue.
                    async with asyncio.timeout(remaining):
                        message = await queue.get()
                except TimeoutError:
                    return None
            else:
                message = queue.get_nowait()
            sub._pending_size -= len(message.data)  # as nats-py's next_msg keeps it
            status = JetStreamContext.is_status_msg(message)
            if not status:
                self._open_for -= 1
                return message
            if status == StatusCode.CONTROL_MESSAGE:
                continue  # a heartbeat
            # 408 (expired) or 404 (nothing more): that request is over; ask again.
            self._open_for = 0
            if status not in (StatusCode.REQUEST_TIMEOUT, StatusCode.NO_MESSAGES):
                # 409 and the like (too many waiting requests, a leader change): ask again, but not in a tight loop.
                await asyncio.sleep(_GRACE_SECONDS)
            return None


def long_poll(subscriber: Any, *, window: float = 0.0, idle_seconds: float = IDLE_SECONDS) -> None:
    """Give a faststream batch pull subscriber a `LongPoll` fetch once it has created its subscription.

    `window`: how long a busy consumer's fetch waits for more after the first message (see `LongPoll.gather`)."""
    create = subscriber._create_subscription  # faststream creates the subscription on start
    consume = subscriber.consume  # faststream's loop hands each batch to this
    rounds: list[_Rounds] = []

    async def create_then_long_poll() -> None:
        await create()
        subscription = subscriber.subscription
        if subscription is not None and not isinstance(getattr(subscription, "fetch", None), _Rounds):
            rounds[:] = [_Rounds(LongPoll(subscription, idle_seconds=idle_seconds), window=window)]
            subscription.fetch = rounds[0]

    async def consume_in_a_new_round(messages: Any) -> Any:
        for fetch in rounds:
            fetch.new_round()  # the batch is handed over: the next fetch starts the next one
        return await consume(messages)

    subscriber._create_subscription = create_then_long_poll
    subscriber.consume = consume_in_a_new_round


class _Rounds:
    """The `fetch` faststream's pull loop calls: one waiting fetch a round, then only what is already queued.

    The loop keeps asking until its batch is full or its deadline passes; a call after messages were handed out
    takes what has been delivered since, and once nothing has, ends the round so the loop handles its batch now.
    Handing a batch to the subscriber starts a new round (`new_round`), so a round that ended on the loop's
    deadline still begins the next with a full `gather`. (Without that mark a first call only takes what is
    queued, or ends at once, and the loop asks again, this time waiting.)"""

    def __init__(self, poll: LongPoll, *, window: float) -> None:
        self._poll = poll
        self._window = window
        self._handed_out = False

    def new_round(self) -> None:
        self._handed_out = False

    async def __call__(self, batch: int = 1, timeout: float | None = None, heartbeat: float | None = None) -> list[Msg]:
        if self._handed_out:
            more = await self._poll.take_queued(batch)
            if more:
                return more
            self._handed_out = False
            raise nats.errors.TimeoutError
        messages = await self._poll.gather(batch, window=self._window)
        self._handed_out = True
        return messages
