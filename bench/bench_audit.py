"""Audit replay and verify rates over a synthetic ledger, beside raw baselines measured in the same run.

Run from the repository root:  .venv/bin/python bench/bench_audit.py [--events 1000000] [--processes 2] [--json]
Needs the PostgreSQL and NATS of the settings (SAFEGUARD_DATABASE_URL, SAFEGUARD_NATS_URL); makes its own
database and stream and drops them after.

1. N synthetic case events (ten a case) are chained and checkpointed as audit does (services/bench/
   audit_synthetic.py), COPYed into a fresh `audit.ledger`, and their canonical bytes published to a stream.
2. Baselines, one thread each: raw hashlib SHA-256 once per entry over the same stored entry bytes (the bytes
   verify hashes; the faster of a Python loop and `map`), and a raw JetStream ordered consumer reading the N
   entries published as messages.
3. The real code paths: replay (`services.audit.replay.replay_cases`: every case folded through the case
   aggregate's `apply`), verify in one process (`services.audit.checks.verify_school`) and verify with worker
   processes (`services.audit.parallel_verify`), each against a witness log of the heads.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import nats  # noqa: E402
from nats.js.api import StorageType, StreamConfig  # noqa: E402
from sqlalchemy import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from sqlalchemy.schema import CreateSchema  # noqa: E402

from services.audit.checks import verify_school  # noqa: E402
from services.audit.heads import WitnessLog  # noqa: E402
from services.audit.kek import load_or_create_kek  # noqa: E402
from services.audit.keyring import KeyRing  # noqa: E402
from services.audit.parallel_verify import verify_school_parallel  # noqa: E402
from services.audit.reading import entry_chunks  # noqa: E402
from services.audit.replay import replay_cases  # noqa: E402
from services.audit.store import SCHEMA, driver_connection, metadata  # noqa: E402
from services.bench.audit_bounds import (  # noqa: E402
    SAMPLE,
    raw_witness,
    replay_parsing_rate,
    sha256_rate,
    verify_hashing_rate,
)
from services.bench.audit_synthetic import COLUMNS, EVENTS_PER_CASE, SCHOOL, SyntheticLedger  # noqa: E402
from shared.db import make_engine, session_factory, transaction  # noqa: E402
from shared.settings import Settings  # noqa: E402

CHUNK = 20_000
TARGETS = {"replay": 0.50, "verify": 0.80}
HASH = COLUMNS.index("entry_hash")  # a row's stored hash, which verify compares with the one it computes


def _plain_dsn(url: str, *, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def _load(
    settings: Settings, database: str, ledger: SyntheticLedger, total: int, subject: str, sample: Sample
) -> float:
    """Make the ledger and the stream (keeping the first entries as a sample); returns the entries a second raw
    SHA-256 hashed, over every stored entry's bytes as they were made."""
    engine = make_engine(settings.database_url.rsplit("/", 1)[0] + f"/{database}", pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(CreateSchema(SCHEMA))
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    connection = await asyncpg.connect(_plain_dsn(settings.database_url, database=database))
    client = await nats.connect(settings.nats_url)
    looped, mapped, sha256 = 0.0, 0.0, hashlib.sha256
    digest = type(sha256()).digest
    try:
        while ledger.size < total:
            rows, entries = ledger.chunk(min(CHUNK, total - ledger.size))
            room = SAMPLE - len(sample.entries)
            sample.entries.extend(entries[:room])
            sample.hashes.extend(row[HASH] for row in rows[:room])
            started = time.perf_counter()
            for entry in entries:
                sha256(entry).digest()
            looped += time.perf_counter() - started
            started = time.perf_counter()
            list(map(digest, map(sha256, entries)))
            mapped += time.perf_counter() - started
            await connection.copy_records_to_table("ledger", schema_name=SCHEMA, records=rows, columns=COLUMNS)
            for entry in entries:
                await client.publish(subject, entry)
            await client.flush()
        ledger.finish()
        await connection.execute(f"analyze {SCHEMA}.ledger")
    finally:
        await connection.close()
        await client.close()
    return total / min(looped, mapped)  # the faster way to call hashlib once per entry is the baseline


async def _jetstream_read(settings: Settings, stream: str, subject: str, total: int) -> float:
    """Seconds a raw ordered consumer takes to read every message of the stream."""
    client = await nats.connect(settings.nats_url)
    js = client.jetstream()
    try:
        deadline = time.monotonic() + 120
        while (await js.stream_info(stream)).state.messages < total:
            if time.monotonic() > deadline:
                raise SystemExit("the bench stream did not receive every message")
            await asyncio.sleep(0.2)
        done, count = asyncio.Event(), 0

        async def counted(message: Any) -> None:
            nonlocal count
            count += 1
            if count == total:
                done.set()

        started = time.perf_counter()
        subscription = await js.subscribe(
            subject, stream=stream, ordered_consumer=True, cb=counted, pending_msgs_limit=-1
        )
        await done.wait()
        seconds = time.perf_counter() - started
        await subscription.unsubscribe()
        return seconds
    finally:
        await client.close()


@dataclass
class Sample:
    """The first entries of the ledger, kept in memory for the bounds measured without I/O."""

    entries: list[bytes] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)


async def _read_only(session: AsyncSession, last: int) -> None:
    """Read every entry as verify does, hashing nothing."""
    async for _ in entry_chunks(await driver_connection(session), school_id=SCHOOL, last=last):
        pass


async def _round(
    settings: Settings,
    database: str,
    witness: WitnessLog,
    ledger: SyntheticLedger,
    processes: int,
    keyring: KeyRing,
    sample: Sample,
) -> dict[str, float]:
    """One measurement of every path and bound, as events a second."""
    url = settings.database_url.rsplit("/", 1)[0] + f"/{database}"
    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    public_key, n = ledger.key.public_key(), ledger.size
    rates: dict[str, float] = {}

    async def timed(name: str, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with transaction(sessions) as session:
            started = time.perf_counter()
            result = await work(session)
            rates[name] = n / (time.perf_counter() - started)
            return result

    try:
        cases = await timed("replay", lambda s: replay_cases(s, keyring=keyring, school_id=SCHOOL))
        assert len(cases) == -(-n // EVENTS_PER_CASE), "every case replayed"
        report = await timed(
            "verify_1_process", lambda s: verify_school(s, school_id=SCHOOL, witness=witness, public_key=public_key)
        )
        assert report.ok and report.anchored == n, report
        report = await timed(
            "verify_n_processes",
            lambda s: verify_school_parallel(
                s,
                dsn=_plain_dsn(settings.database_url, database=database),
                table=f"{SCHEMA}.ledger",
                school_id=SCHOOL,
                last=n,
                witness=witness.raw_records(school_id=SCHOOL),
                fallback_witness=witness.records(school_id=SCHOOL),
                public_key=public_key,
                processes=processes,
            ),
        )
        assert report.ok and report.anchored == n, report
        await timed("postgresql_read_alone", lambda s: _read_only(s, n))
    finally:
        await engine.dispose()
    raw = raw_witness(ledger.records)
    rates["raw_sha256"] = sha256_rate(sample.entries)
    rates["verify_hashing_in_memory"] = verify_hashing_rate(
        sample.entries, sample.hashes, witness=raw, public_key=public_key
    )
    rates["replay_parse_and_fold_in_memory"] = replay_parsing_rate(sample.entries)
    return rates


async def run(events: int, processes: int, repeat: int) -> dict[str, Any]:
    settings = Settings()
    tag = uuid.uuid4().hex[:8]
    database, stream, subject = f"bench_audit_{tag}", f"BENCH_AUDIT_{tag}", f"bench-audit-{tag}.entries"
    admin = await asyncpg.connect(_plain_dsn(settings.database_url, database="postgres"))
    await admin.execute(f'create database "{database}"')
    client = await nats.connect(settings.nats_url)
    await client.jetstream().add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
    ledger, sample, rounds = SyntheticLedger(), Sample(), []
    try:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            sha_while_loading = await _load(settings, database, ledger, events, subject, sample)
            witness = WitnessLog(Path(folder) / "witness.jsonl")
            witness.path.write_text("".join(ledger.witness_lines()))
            made = time.perf_counter() - started
            keyring = KeyRing(load_or_create_kek(Path(folder) / "key-encryption-key"))
            for _ in range(repeat):  # interleaved, so a burst of load on the machine hits every figure alike
                read = events / await _jetstream_read(settings, stream, subject, events)
                rates = await _round(settings, database, witness, ledger, processes, keyring, sample)
                rounds.append({"raw_jetstream_ordered_read": read, **rates})
    finally:
        await client.jetstream().delete_stream(stream)
        await client.close()
        await admin.execute(f'drop database if exists "{database}" with (force)')
        await admin.close()
    rate = {name: max(one[name] for one in rounds) for name in rounds[0]}
    rate["raw_sha256"] = max(rate["raw_sha256"], sha_while_loading)
    return {
        "events": events,
        "heads": len(ledger.records),
        "processes": processes,
        "cpus": os.cpu_count(),
        "repeat": repeat,
        "sample": len(sample.entries),
        "setup_seconds": round(made, 1),
        "rates_per_second": {name: round(value) for name, value in rate.items()},
        "ratios": {
            "replay_vs_jetstream": rate["replay"] / rate["raw_jetstream_ordered_read"],
            "verify_1_process_vs_sha256": rate["verify_1_process"] / rate["raw_sha256"],
            "verify_n_processes_vs_sha256": rate["verify_n_processes"] / rate["raw_sha256"],
            "verify_hashing_in_memory_vs_sha256": rate["verify_hashing_in_memory"] / rate["raw_sha256"],
            "replay_parse_and_fold_in_memory_vs_jetstream": rate["replay_parse_and_fold_in_memory"]
            / rate["raw_jetstream_ordered_read"],
        },
        "targets": TARGETS,
        "rounds": [{name: round(value) for name, value in one.items()} for one in rounds],
    }


def describe(result: dict[str, Any]) -> str:
    """The figures as a person reads them."""
    rates, ratios, n = result["rates_per_second"], result["ratios"], result["processes"]
    lines = [
        f"audit over {result['events']:,} synthetic events ({result['heads']:,} signed heads; setup "
        f"{result['setup_seconds']} s; {result['cpus']} CPUs; best of {result['repeat']} interleaved rounds)",
        f"  raw hashlib SHA-256 over the entry bytes, 1 thread {rates['raw_sha256']:>10,} events/s",
        f"  raw JetStream ordered read, 1 thread               {rates['raw_jetstream_ordered_read']:>10,} events/s",
        f"  replay (case apply), 1 process                     {rates['replay']:>10,} events/s  "
        f"{ratios['replay_vs_jetstream']:6.1%} of JetStream (target {TARGETS['replay']:.0%})",
        f"  verify, 1 process                                  {rates['verify_1_process']:>10,} events/s  "
        f"{ratios['verify_1_process_vs_sha256']:6.1%} of SHA-256 (target {TARGETS['verify']:.0%})",
        f"  verify, {n} worker processes + the joining one      {rates['verify_n_processes']:>10,} events/s  "
        f"{ratios['verify_n_processes_vs_sha256']:6.1%} of the 1-thread SHA-256",
        f"  bounds, measured in this run (first {result['sample']:,} entries in memory, 1 thread, no I/O):",
        f"    verify's own hashing and checks                  {rates['verify_hashing_in_memory']:>10,} events/s  "
        f"{ratios['verify_hashing_in_memory_vs_sha256']:6.1%} of SHA-256",
        f"    replay's parse and fold                          {rates['replay_parse_and_fold_in_memory']:>10,} "
        f"events/s  {ratios['replay_parse_and_fold_in_memory_vs_jetstream']:6.1%} of JetStream",
        f"    reading the entries from PostgreSQL alone        {rates['postgresql_read_alone']:>10,} events/s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="synthetic ledger entries (default 1,000,000)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="verify's worker processes")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds; the best of each figure is kept")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args(argv)
    result = asyncio.run(run(max(options.events, EVENTS_PER_CASE), max(options.processes, 1), max(options.repeat, 1)))
    print(json.dumps(result, indent=2) if options.json else describe(result))


if __name__ == "__main__":
    main()
