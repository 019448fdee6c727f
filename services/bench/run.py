"""One bench run: start the system, warm it up, measure baselines, latency steps and saturation, check it all."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js import JetStreamContext
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from services.bench import baselines, figures, load, loopback, observe, push_device
from services.bench.profiling import Profiler
from services.bench.resources import ProcessGroup, ResourceMonitor, cpu_delta, listening_pid
from services.bench.system import RunningSystem, start_system, stop_system
from services.launcher.banner import CONCERNS_PATH, SAMPLE_SCHOOL_ID


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and how hard to push."""

    concerns: int = 2000
    concurrency: int = 32
    loads: tuple[float, ...] = (10.0, 50.0, 100.0)
    load_seconds: float = 12.0
    baseline_seconds: float = 2.0
    warmup: int = 5
    drain_timeout: float = 600.0
    nats_url: str | None = None
    database_url: str | None = None
    profile_dir: Path | None = None
    push_device: bool = True
    """Every push-capable person has a subscribed device (a loopback push service); False: none, push fails."""


def run_bench(options: BenchOptions, *, progress: Progress) -> dict[str, Any]:
    """Start the system, measure everything in one run, stop it; returns the report."""
    with tempfile.TemporaryDirectory(prefix="safeguard-bench-") as work:
        work_dir = Path(work)
        work_dir.chmod(0o755)  # the embedded PostgreSQL runs as its own user and must pass through
        log_path = work_dir / "services.log"
        certificates = loopback.make_certificates(work_dir / "push") if options.push_device else None
        # Only notifications sends push, so only its process trusts the run's throwaway CA.
        trust = {"notifications": {"SSL_CERT_FILE": str(certificates.ca_file)}} if certificates else None
        with log_path.open("w") as log:
            task = progress.add_task("starting NATS, PostgreSQL and the services", total=None)
            system = start_system(
                work_dir,
                nats_url=options.nats_url,
                database_server_url=options.database_url,
                log=log,
                log_path=log_path,
                own_environment=trust,
            )
            progress.remove_task(task)
            try:
                return asyncio.run(_Measurement(system, options, progress, certificates).run())
            finally:
                stop_system(system)


def progress_bar(console: Any) -> Progress:
    """The bar the bench draws on stderr."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _server_pid(url: str, embedded_pid: int | None) -> int | None:
    return embedded_pid if embedded_pid is not None else listening_pid(make_url(url).port or 0)


@dataclass
class _Measurement:
    system: RunningSystem
    options: BenchOptions
    progress: Progress
    certificates: loopback.LoopbackCertificates | None = None
    references: list[str] = field(default_factory=list)
    next_number: int = 0

    async def run(self) -> dict[str, Any]:
        if self.certificates is None:
            return await self._measure(None)
        async with push_device.push_stand_in(self.certificates) as stand_in:
            return await self._measure(stand_in)

    async def _measure(self, stand_in: push_device.PushStandIn | None) -> dict[str, Any]:
        system, options = self.system, self.options
        self.url = system.intake_url + CONCERNS_PATH.format(school_id=SAMPLE_SCHOOL_ID)
        self.db = await asyncpg.connect(system.dsn)
        self.nats = await nats.connect(system.nats_url, max_reconnect_attempts=0)
        self.js: JetStreamContext = self.nats.jetstream()
        try:
            devices = 0
            if stand_in is not None:
                people = push_device.push_capable_people(system.policy_dir / f"{SAMPLE_SCHOOL_ID}.yaml")
                devices = await push_device.subscribe_devices(self.db, stand_in, people)
            with ResourceMonitor(self._groups()) as monitor:
                await self._post_and_settle("warm-up", lambda: self._saturate(options.warmup, concurrency=1))
                measured_baselines = await self._baselines()
                steps = [await self._latency_step(per_second) for per_second in options.loads]
                saturation, cpu = await self._saturation(monitor)
                peak_rss = monitor.peak_rss_mb()
            self._no_service_died()
            completeness = await self._completeness()
            path = await push_device.path_report(self.db, stand_in, devices=devices)
        finally:
            await self.nats.close()
            await self.db.close()
        return {
            "schema": figures.REPORT_SCHEMA,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
            "servers": "embedded" if system.embedded else "configured",
            # Configured servers may serve others too; their CPU and memory then include that work.
            "server_figures_shared": not system.embedded,
            "options": {"concerns": options.concerns, "concurrency": options.concurrency, "loads": options.loads},
            "notification_path": path,
            "saturation": saturation,
            "latency": steps,
            "cpu_ms_per_concern": figures.per_concern_ms(cpu, concerns=options.concerns),
            "peak_rss_mb": peak_rss,
            "baselines": measured_baselines,
            "ratios": [row.as_json() for row in figures.ratios(saturation, measured_baselines)],
            "completeness": completeness,
        }

    def _no_service_died(self) -> None:
        """A service that exited mid-run would read as idle (its CPU lost from the totals): fail the run instead."""
        dead = self.system.services.dead()
        if dead:
            exits = ", ".join(f"{name} (exit code {code})" for name, code in sorted(dead.items()))
            raise RuntimeError(f"services exited during the run: {exits}\n{self.system.log_tail(lines=80)}")

    def _groups(self) -> dict[str, ProcessGroup]:
        system = self.system
        pids: dict[str, int | None] = dict(system.service_pids())
        pids["nats-server"] = _server_pid(system.nats_url, system.nats_pid())
        pids["postgres"] = _server_pid(system.database_url, system.postgres_pid())
        pids["bench"] = os.getpid()
        return {
            name: ProcessGroup(name, pid, descendants=name == "postgres")
            for name, pid in pids.items()
            if pid is not None
        }

    def _tick(self, task: TaskID) -> Callable[[], None]:
        return lambda: self.progress.advance(task)

    async def _saturate(self, count: int, *, concurrency: int, task: TaskID | None = None) -> load.LoadResult:
        result = await load.saturate(
            self.url,
            count=count,
            concurrency=concurrency,
            first_number=self.next_number,
            on_reply=None if task is None else self._tick(task),
        )
        return self._keep(result)

    def _keep(self, result: load.LoadResult) -> load.LoadResult:
        if result.failures:
            raise RuntimeError(f"intake refused {len(result.failures)} concerns: {sorted(set(result.failures))}")
        self.next_number += len(result.replies)
        self.references.extend(reply.reference for reply in result.replies)
        return result

    async def _post_and_settle(self, what: str, post: Callable[[], Any]) -> tuple[load.LoadResult, float]:
        result = await post()
        return result, await self._settle(what)

    async def _settle(self, what: str) -> float:
        """Wait until the pipeline is quiet with every concern so far complete; returns when it was seen."""
        expected = len(self.references)
        task = self.progress.add_task(f"{what}: concerns routed", total=expected)
        deadline = time.monotonic() + self.options.drain_timeout
        previous: observe.Progress | None = None
        while time.monotonic() < deadline:
            now = await observe.progress(self.db, self.js, stream=self.system.names.stream)
            self.progress.update(
                task,
                completed=min(now.cases, expected),
                description=f"{what}: cases, audited {now.audited}/{now.on_stream}, sent {now.sent}/{now.requested}",
            )
            # Two equal settled readings in a row: nothing was still in flight between them.
            if now.settled(expected_cases=expected) and now == previous:
                self.progress.remove_task(task)
                return time.time()
            previous = now
            await asyncio.sleep(now.next_reading_in(expected_cases=expected))
        self.progress.remove_task(task)
        raise TimeoutError(f"{what}: the pipeline did not settle in {self.options.drain_timeout:.0f}s: {previous}")

    async def _baselines(self) -> dict[str, float | None]:
        seconds, names = self.options.baseline_seconds, self.system.names
        task = self.progress.add_task("baselines: JetStream, PostgreSQL, bare FastAPI", total=3)
        awaited, published_async = await baselines.jetstream_rates(self.system.nats_url, names=names, seconds=seconds)
        self.progress.advance(task)
        postgres = await baselines.postgres_rates(self.system.dsn, seconds=seconds)
        self.progress.advance(task)
        fastapi = await baselines.fastapi_rate(seconds=seconds, concurrency=self.options.concurrency)
        self.progress.advance(task)
        return {
            "jetstream_publish_awaited_per_second": round(awaited, 1),
            "jetstream_publish_async_per_second": round(published_async, 1),
            "postgres_insert_commit_1_connection_per_second": round(postgres[1], 1),
            "postgres_insert_commit_8_connections_per_second": round(postgres[8], 1),
            "fastapi_post_per_second": round(fastapi, 1),
        }

    async def _latency_step(self, per_second: float) -> dict[str, Any]:
        seconds = self.options.load_seconds
        task = self.progress.add_task(f"{per_second:g} concerns/s offered", total=max(1, round(per_second * seconds)))

        async def post() -> load.LoadResult:
            result = await load.offered(
                self.url,
                per_second=per_second,
                seconds=seconds,
                first_number=self.next_number,
                on_reply=self._tick(task),
            )
            return self._keep(result)

        result, _ = await self._post_and_settle(f"{per_second:g}/s drain", post)
        self.progress.remove_task(task)
        reached = await observe.timings(self.db, (reply.reference for reply in result.replies))
        return {
            "offered_per_second": per_second,
            "seconds": round(result.seconds, 2),
            "concerns": len(result.replies),
            "achieved_per_second": figures.rate(len(result.replies), result.seconds),
            **observe.latencies(result.replies, reached),
        }

    async def _saturation(self, monitor: ResourceMonitor) -> tuple[dict[str, Any], dict[str, float]]:
        count = self.options.concerns
        events_before = (await self.js.stream_info(self.system.names.stream)).state.messages
        transactions_before = await self._transactions()
        cpu_before = monitor.cpu_snapshot()
        task = self.progress.add_task(f"saturation: posting {count} concerns", total=count)
        profiler = Profiler(self.options.profile_dir, pids=self.system.service_pids())
        with profiler:
            result, settled_at = await self._post_and_settle(
                "saturation", lambda: self._saturate(count, concurrency=self.options.concurrency, task=task)
            )
        self.progress.remove_task(task)
        cpu = cpu_delta(cpu_before, monitor.cpu_snapshot())
        await asyncio.sleep(1.0)  # PostgreSQL publishes its transaction counters at most once a second
        after = await self._transactions()
        commits, rollbacks, sessions = (a - b for a, b in zip(after, transactions_before, strict=True))
        events = (await self.js.stream_info(self.system.names.stream)).state.messages - events_before
        reached = await observe.timings(self.db, (reply.reference for reply in result.replies))
        ends = [at for timing in reached.values() for at in (timing.audit_last, timing.channel) if at is not None]
        # The last completion by the database's and the notifier's clocks; when polling alone saw it, that.
        finished = max(ends) if len(reached) == count and ends else settled_at
        seconds = finished - result.started_at
        return {
            "concerns": count,
            "concurrency": self.options.concurrency,
            "seconds": round(seconds, 2),
            "concerns_per_second": figures.rate(count, seconds),
            "intake_accepts_per_second": figures.rate(count, result.seconds),
            "events": events,
            "events_per_second": figures.rate(events, seconds),
            "postgres_commits_per_concern": round(commits / count, 1),
            "postgres_rollbacks_per_concern": round(rollbacks / count, 1),
            "postgres_sessions_per_concern": round(sessions / count, 2),
            "profiles": profiler.hot_spots(),
        }, cpu

    async def _transactions(self) -> tuple[int, int, int]:
        """Commits, rollbacks and sessions (connections opened) so far in the run's database."""
        await self.db.execute("select pg_stat_clear_snapshot()")
        row = await self.db.fetchrow(
            "select xact_commit, xact_rollback, sessions from pg_stat_database where datname = current_database()"
        )
        assert row is not None
        return int(row["xact_commit"]), int(row["xact_rollback"]), int(row["sessions"])

    async def _completeness(self) -> dict[str, Any]:
        task = self.progress.add_task("completeness: reading the stream and the ledger", total=None)
        problems = await observe.incomplete_concerns(
            self.db,
            self.js,
            stream=self.system.names.stream,
            subjects=f"{self.system.names.subject_root}.>",
            references=self.references,
        )
        self.progress.remove_task(task)
        shown = dict(list(problems.items())[:50])
        return {
            "concerns": len(self.references),
            "complete": len(self.references) - len(problems),
            "all_complete": not problems,
            "incomplete": [{"reference": ref, "problems": found} for ref, found in shown.items()],
        }
