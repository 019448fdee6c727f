"""The stream's acknowledgements of the outbox relay's publishes, collected per flush on one inbox subscription."""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header

_NO_ACK = "no acknowledgement from the stream in time"


class Flush:
    """The acks one flush waits for: `outcomes[i]` is None once row i is stored, else why it was not."""

    def __init__(self, flush_id: str, prefix: str, count: int) -> None:
        self.flush_id = flush_id
        self._prefix = prefix
        self.outcomes: list[str | None] = [_NO_ACK] * count
        self._settled = [False] * count
        self._waiting = count
        self.done = asyncio.Event()
        if count == 0:
            self.done.set()

    def reply_to(self, index: int) -> str:
        return f"{self._prefix}{index}"

    def settle(self, index: int, outcome: str | None) -> None:
        """Row `index`'s ack (the first one counts: a repeat of it changes nothing)."""
        if 0 <= index < len(self._settled) and not self._settled[index]:
            self._settled[index] = True
            self.outcomes[index] = outcome
            self._waiting -= 1
            if self._waiting == 0:
                self.done.set()


class Acks:
    """One inbox subscription (`<inbox>.<flush>.<row>`) receiving the stream's acks for the relay's publishes."""

    def __init__(self) -> None:
        self._client: Client | None = None
        self._subscription: Subscription | None = None
        self._inbox = ""
        self._flushes: dict[str, Flush] = {}
        self._counter = 0

    async def expect(self, client: Client, count: int) -> Flush:
        if self._client is not client or self._subscription is None:
            # A new connection (the broker restarted): subscribe on it; nats-py renews it across reconnects itself.
            self._inbox = client.new_inbox()
            self._subscription = await client.subscribe(f"{self._inbox}.*.*", cb=self._on_ack)
            self._client = client
        self._counter += 1
        flush_id = str(self._counter)
        flush = Flush(flush_id, f"{self._inbox}.{flush_id}.", count)
        self._flushes[flush_id] = flush
        return flush

    def forget(self, flush: Flush) -> None:
        """Stop waiting for `flush`'s acks (a late one is then ignored; its row is published again next time)."""
        self._flushes.pop(flush.flush_id, None)

    async def _on_ack(self, message: Msg) -> None:
        _, flush_id, index = message.subject.rsplit(".", 2)
        flush = self._flushes.get(flush_id)
        if flush is None or not index.isdigit():
            return
        flush.settle(int(index), _refusal(message))


def _refusal(message: Msg) -> str | None:
    """None when the stream stored the message (or already had it); else the reason it did not."""
    if message.headers and message.headers.get(Header.STATUS) == "503":
        return "no stream answered (503)"
    data = message.data
    if b'"error"' not in data:
        return None
    try:
        error = json.loads(data).get("error")
    except ValueError:
        return "an unreadable reply from the stream"
    return f"refused by the stream: {error}" if error else None
