"""Raw speed of the servers the pipeline stands on, measured in the same run on the same machine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import asyncpg
import nats
from nats.js.api import StorageType, StreamConfig

from services.bench.load import saturate
from services.bench.system import Names
from services.launcher.ports import LOOPBACK, free_port, wait_until_listening
from services.launcher.processes import die_with_parent, stop_process
from services.launcher.supervisor import project_root

PAYLOAD = b"x" * 256  # about the size of a small event envelope
ASYNC_WINDOW = 4000  # nats-py's default bound on unacknowledged publish_async calls
MAX_BARE_POSTS = 1_000_000  # the bare FastAPI baseline stops on time long before this


async def jetstream_rates(nats_url: str, *, names: Names, seconds: float) -> tuple[float, float]:
    """Messages per second to a file-backed stream: publish awaited one at a time, then publish_async."""
    client = await nats.connect(nats_url, max_reconnect_attempts=0)
    try:
        js = client.jetstream(publish_async_max_pending=ASYNC_WINDOW)
        await js.add_stream(
            StreamConfig(
                name=names.bench_stream, subjects=[names.bench_subjects], storage=StorageType.FILE, duplicate_window=120
            )
        )
        subject = names.bench_subjects.replace(">", "publish")
        awaited = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            # Nats-Msg-Id as the outbox relay sends it, so the broker's duplicate check is part of the price.
            await js.publish(subject, PAYLOAD, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            awaited += 1
        awaited_rate = awaited / (time.monotonic() - started)
        issued = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await js.publish_async(subject, PAYLOAD, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            issued += 1
        await js.publish_async_completed()
        async_rate = issued / (time.monotonic() - started)
        await js.delete_stream(names.bench_stream)
        return awaited_rate, async_rate
    finally:
        await client.close()


async def postgres_rates(dsn: str, *, seconds: float, connections: tuple[int, ...] = (1, 8)) -> dict[int, float]:
    """Rows per second inserted and committed one at a time, for each number of concurrent connections."""
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(
            "create table if not exists bench_raw_rows "
            "(id bigint generated always as identity primary key, body text not null)"
        )
    finally:
        await setup.close()
    rates: dict[int, float] = {}
    for count in connections:
        rates[count] = await _insert_commit_rate(dsn, connections=count, seconds=seconds)
    cleanup = await asyncpg.connect(dsn)
    try:
        await cleanup.execute("drop table bench_raw_rows")
    finally:
        await cleanup.close()
    return rates


async def _insert_commit_rate(dsn: str, *, connections: int, seconds: float) -> float:
    opened = [await asyncpg.connect(dsn) for _ in range(connections)]
    done = 0

    async def insert_until(connection: asyncpg.Connection, deadline: float) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            # Outside a transaction block each statement is its own transaction: one commit per row.
            await connection.execute("insert into bench_raw_rows (body) values ($1)", "x" * 256)
            done += 1

    try:
        started = time.monotonic()
        await asyncio.gather(*(insert_until(connection, started + seconds) for connection in opened))
        return done / (time.monotonic() - started)
    finally:
        for connection in opened:
            await connection.close()


async def fastapi_rate(*, seconds: float, concurrency: int) -> float:
    """Requests per second a bare FastAPI POST under uvicorn (own process) answers to the intake load loop."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "services.bench.bare_app:app",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = await asyncio.to_thread(
        subprocess.Popen,
        command,
        cwd=project_root(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )
    try:
        if not await asyncio.to_thread(wait_until_listening, port, deadline_seconds=30.0):
            raise RuntimeError("the bare FastAPI app did not start")
        url = f"http://{LOOPBACK}:{port}/concerns"
        result = await saturate(url, count=MAX_BARE_POSTS, concurrency=concurrency, seconds=seconds)
        if result.failures:
            raise RuntimeError(f"the bare FastAPI app failed {len(result.failures)} requests")
        return len(result.replies) / result.seconds
    finally:
        await asyncio.to_thread(stop_process, process, grace_seconds=5.0)
