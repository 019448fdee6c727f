"""An empty pull fetch times out the way faststream expects, so a quiet consumer logs no ERROR.

nats-py 2.15 and 2.16 let a plain `asyncio.TimeoutError` out of `PullSubscription.fetch` when the fetch's deadline
has passed by the time its second pull request would go out (nats-io/nats.py#1008, not yet released). faststream's
pull loop catches only `nats.errors.TimeoutError`, so the plain one ends the loop; faststream restarts it at once
but logs an ERROR with a traceback each time. Raising the documented class instead keeps the loop running quietly.
"""

from __future__ import annotations

import functools
from typing import Any

import nats.errors
from nats.js.client import JetStreamContext

_MARK = "_safeguard_documented_timeout"


def raise_documented_timeouts() -> None:
    """Make every `PullSubscription.fetch` raise `nats.errors.TimeoutError` for a timeout (idempotent)."""
    subscription = JetStreamContext.PullSubscription
    if getattr(subscription.fetch, _MARK, False):
        return
    undocumented = subscription.fetch

    @functools.wraps(undocumented)
    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await undocumented(self, *args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as timeout:
            raise nats.errors.TimeoutError from timeout

    setattr(fetch, _MARK, True)
    subscription.fetch = fetch  # type: ignore[method-assign]
