"""Load on an HTTP endpoint at 127.0.0.1: as fast as a bounded set of clients can, or at a fixed offered rate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.bench.http_client import ConnectionLost, ConnectionPool
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


async def _post(
    pool: ConnectionPool, path: str, number: int, result: LoadResult, on_reply: Tick | None, *, attempts: int = 3
) -> None:
    """POST concern `number`; a lost connection is retried under the same Idempotency-Key, so never doubled."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"bench-{number}"}
    body = concern_body(number)
    connection = await pool.acquire()
    sent_at = time.time()
    try:
        for attempt in range(attempts):
            try:
                status, content = await connection.post(path, body, headers=headers)
                break
            except ConnectionLost:
                if attempt == attempts - 1:
                    result.failures.append("connection lost")
                    return
    finally:
        pool.release(connection)
    replied_at = time.time()
    if status not in (200, 202):
        result.failures.append(f"HTTP {status}")
        return
    reference = str(json.loads(content).get("reference", ""))
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

    pool = ConnectionPool(url, size=concurrency)
    path = urlsplit(url).path

    async def worker() -> None:
        for number in numbers:
            if time.monotonic() >= deadline:
                return
            await _post(pool, path, number, result, on_reply)

    try:
        result.started_at = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.finished_at = time.time()
    finally:
        await pool.close()
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

    pool = ConnectionPool(url, size=max_in_flight)
    path = urlsplit(url).path

    async def one(number: int) -> None:
        try:
            await _post(pool, path, number, result, on_reply)
        finally:
            in_flight.release()

    try:
        start = time.monotonic()
        result.started_at = time.time()
        for index in range(total):
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one(first_number + index)))
        await asyncio.gather(*tasks)
        result.finished_at = time.time()
    finally:
        await pool.close()
    return result
