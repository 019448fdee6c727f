"""A fix for pulled batches being dropped and redelivered out of order (nats-py 2.16 with faststream 0.7.8).

nats-py's `PullSubscription.fetch` can raise a plain `asyncio.TimeoutError` when a fetch window closes (its
"deadline <= 0" path), while faststream's pull loop only catches `nats.errors.TimeoutError`. The loop's task then
dies with the messages it had already fetched in that window, unacknowledged: JetStream redelivers them after
`ack_wait`, behind later messages. Audit saw a `case.acknowledged` chained before the `case.opened` it followed.
Raising nats' own TimeoutError (a subclass of asyncio's) lets faststream end the window and handle the batch.
"""

from __future__ import annotations

import functools
from typing import Any

import nats.errors
from nats.js.client import JetStreamContext

_MARK = "_safeguard_timeout_fixed"


def fix_pull_fetch_timeouts() -> None:
    """Make `PullSubscription.fetch` raise only nats' TimeoutError on a timeout (idempotent)."""
    subscription = JetStreamContext.PullSubscription
    original = subscription.fetch
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as timeout:
            raise nats.errors.TimeoutError from timeout

    setattr(fetch, _MARK, True)
    subscription.fetch = fetch  # type: ignore[method-assign]
