"""Load on an HTTP endpoint at 127.0.0.1: as fast as a bounded set of clients can, or at a fixed offered rate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from services.launcher.banner import SAMPLE_CONCERN

Tick = Callable[[], None]


@dataclass(frozen=True)
class Reply:
    """One accepted request: its concern reference and the wall-clock times it was sent and answered."""

    reference: str
    sent_at: float
    replied_at: float


@dataclass
class LoadResult:
    """What one load phase sent and got back."""

    replies: list[Reply] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at


def concern_body(number: int) -> bytes:
    """A synthetic concern (the launcher's sample, numbered so every body differs)."""
    return json.dumps({**SAMPLE_CONCERN, "summary": f"Bench concern {number}"}).encode()


def client(*, connections: int) -> httpx.AsyncClient:
    """An HTTP client holding at most `connections` keep-alive connections."""
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout would close them under a request.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))


async def _post(
    http: httpx.AsyncClient, url: str, number: int, result: LoadResult, on_reply: Tick | None, *, attempts: int = 3
) -> None:
    """POST concern `number`; a transport error is retried under the same Idempotency-Key, so never doubled."""
    headers = {"content-type": "application/json", "idempotency-key": f"bench-{number}"}
    body = concern_body(number)
    sent_at = time.time()
    for attempt in range(attempts):
        try:
            response = await http.post(url, content=body, headers=headers)
            break
        except httpx.TransportError as error:
            if attempt == attempts - 1:
                result.failures.append(type(error).__name__)
                return
    replied_at = time.time()
    if response.status_code not in (200, 202):
        result.failures.append(f"HTTP {response.status_code}")
        return
    reference = str(response.json().get("reference", ""))
    result.replies.append(Reply(reference, sent_at, replied_at))
    if on_reply is not None:
        on_reply()


async def saturate(
    url: str,
    *,
    count: int,
    concurrency: int,
    first_number: int = 0,
    on_reply: Tick | None = None,
    seconds: float | None = None,
) -> LoadResult:
    """POST `count` concerns (or as many as fit in `seconds`) as fast as `concurrency` clients can, each
    sending its next one on a reply."""
    result = LoadResult()
    numbers = iter(range(first_number, first_number + count))
    deadline = time.monotonic() + seconds if seconds is not None else float("inf")

    async def worker(http: httpx.AsyncClient) -> None:
        for number in numbers:
            if time.monotonic() >= deadline:
                return
            await _post(http, url, number, result, on_reply)

    async with client(connections=concurrency) as http:
        result.started_at = time.time()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        result.finished_at = time.time()
    return result


async def offered(
    url: str,
    *,
    per_second: float,
    seconds: float,
    max_in_flight: int = 256,
    first_number: int = 0,
    on_reply: Tick | None = None,
) -> LoadResult:
    """POST concerns on a fixed schedule (open loop), never more than `max_in_flight` unanswered at once."""
    result = LoadResult()
    total = max(1, round(per_second * seconds))
    in_flight = asyncio.Semaphore(max_in_flight)
    tasks: list[asyncio.Task[None]] = []

    async def one(http: httpx.AsyncClient, number: int) -> None:
        try:
            await _post(http, url, number, result, on_reply)
        finally:
            in_flight.release()

    async with client(connections=max_in_flight) as http:
        start = time.monotonic()
        result.started_at = time.time()
        for index in range(total):
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one(http, first_number + index)))
        await asyncio.gather(*tasks)
        result.finished_at = time.time()
    return result
