"""The system under test: every service as its own process, as `safeguard up` runs it, on servers of its own.

With no servers configured it starts the launcher's embedded NATS and PostgreSQL in a temporary folder.
With SAFEGUARD_NATS_URL / SAFEGUARD_DATABASE_URL it uses those servers, under a fresh database name, subject
root and stream name, all removed afterwards, so nothing collides with other users of the same servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import asyncpg
import nats
from sqlalchemy.engine import make_url

from services.launcher.embedded_nats import EmbeddedNats
from services.launcher.embedded_postgres import EmbeddedPostgres
from services.launcher.ports import free_port
from services.launcher.supervisor import ServiceGroup, http_ok, service_environment, wait_for
from shared.db import asyncpg_dsn, ensure_database

BENCH_DATABASE = "safeguard_bench"


@dataclass(frozen=True)
class Names:
    """This run's own database, subject root and stream (unique, so runs on shared servers never collide)."""

    database: str
    subject_root: str
    stream: str

    @classmethod
    def fresh(cls) -> Names:
        tag = uuid.uuid4().hex[:10]
        return cls(database=f"sgbench_{tag}", subject_root=f"sgbench{tag}", stream=f"SGBENCH_{tag}")

    @property
    def bench_stream(self) -> str:
        """The stream the JetStream baselines publish to (never the event stream)."""
        return f"{self.stream}_RAW"

    @property
    def bench_subjects(self) -> str:
        return f"{self.subject_root}-raw.>"


@dataclass
class RunningSystem:
    """Where the running system is, and what to stop when the bench is done."""

    names: Names
    nats_url: str
    database_url: str
    intake_url: str
    work_dir: Path
    services: ServiceGroup
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def dsn(self) -> str:
        """The database's libpq DSN, for asyncpg."""
        return asyncpg_dsn(self.database_url)

    @property
    def embedded(self) -> bool:
        return self.nats is not None and self.postgres is not None

    def service_pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.services.processes.items()}

    def nats_pid(self) -> int | None:
        """The embedded nats-server's pid; None when a configured (shared) server is used."""
        return self.nats.process.pid if self.nats is not None and self.nats.process is not None else None

    def postgres_pid(self) -> int | None:
        """The embedded postmaster's pid, read from its postmaster.pid file."""
        if self.postgres is None:
            return None
        try:
            return int((self.postgres.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def policy_dir(self) -> Path:
        """The folder of policy files the services read."""
        return Path(self.services.environment.get("SAFEGUARD_POLICY_DIR", "deploy/policies"))

    def log_tail(self, *, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def database_url_named(server_url: str, database: str) -> str:
    """The same server and credentials as `server_url`, with another database name."""
    url = make_url(server_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
    return url.set(database=database).render_as_string(hide_password=False)


def bench_environment(
    base: dict[str, str], *, names: Names, nats_url: str, database_url: str, work_dir: Path
) -> dict[str, str]:
    """The services' environment: `safeguard up`'s, with this run's names, free ports and production logging."""
    clean = {key: value for key, value in base.items() if not key.startswith("SAFEGUARD_")}
    environment = service_environment(
        clean,
        nats_url=nats_url,
        database_url=database_url,
        intake_port=free_port(),
        notifications_port=free_port(),
        data_dir=work_dir,
        signing_key=secrets.token_urlsafe(32),
    )
    environment.update(
        {
            "SAFEGUARD_SUBJECT_ROOT": names.subject_root,
            "SAFEGUARD_STREAM_NAME": names.stream,
            "SAFEGUARD_LOG_LEVEL": "WARNING",
            # Never the console's default port: another run (or `safeguard up`) may hold it, and a console that
            # cannot bind exits, leaving its CPU and its database work out of the figures.
            "SAFEGUARD_CONSOLE_HTTP_PORT": str(free_port()),
            # Every request comes from this one client: lift intake's per-client limit, which would refuse it.
            "SAFEGUARD_INTAKE_RATE_PER_SECOND": "100000",
            "SAFEGUARD_INTAKE_RATE_BURST": "100000",
        }
    )
    return environment


def start_system(
    work_dir: Path,
    *,
    nats_url: str | None,
    database_server_url: str | None,
    log: TextIO,
    log_path: Path,
    startup_timeout: float = 90.0,
    own_environment: Mapping[str, Mapping[str, str]] | None = None,
) -> RunningSystem:
    """Start the servers that are not configured, create this run's database, start every service.

    `own_environment`: what only one service's process may see, by service name."""
    names = Names.fresh()
    nats_server = postgres = None
    if nats_url is None:
        nats_server = EmbeddedNats(work_dir / "nats")
        nats_url = nats_server.start()
    if database_server_url is None:
        postgres = EmbeddedPostgres(work_dir / "postgres")
        postgres.start()
        database_url = postgres.url(BENCH_DATABASE)
    else:
        database_url = database_url_named(database_server_url, names.database)
    asyncio.run(ensure_database(database_url))
    environment = bench_environment(
        dict(os.environ), names=names, nats_url=nats_url, database_url=database_url, work_dir=work_dir
    )
    services = ServiceGroup(environment=environment, output=log, own_environment=own_environment)
    system = RunningSystem(
        names=names,
        nats_url=nats_url,
        database_url=database_url,
        intake_url=f"http://127.0.0.1:{environment['SAFEGUARD_INTAKE_HTTP_PORT']}",
        work_dir=work_dir,
        services=services,
        nats=nats_server,
        postgres=postgres,
        log_path=log_path,
    )
    services.start()
    notifications_url = f"http://127.0.0.1:{environment['SAFEGUARD_NOTIFICATIONS_HTTP_PORT']}"
    console_url = f"http://127.0.0.1:{environment['SAFEGUARD_CONSOLE_HTTP_PORT']}"
    health = [f"{url}/healthz" for url in (system.intake_url, notifications_url, console_url)]
    if not wait_for(
        lambda: all(http_ok(url) for url in health),
        deadline_seconds=startup_timeout,
        give_up=lambda: services.exited() is not None,
    ):
        stop_system(system)
        raise RuntimeError(f"the services did not become ready:\n{system.log_tail()}")
    return system


def stop_system(system: RunningSystem) -> None:
    """Stop the services, then remove this run's database and streams or stop the embedded servers."""
    system.services.stop()
    if system.nats is None:
        asyncio.run(_drop_streams(system))
    else:
        system.nats.stop()
    if system.postgres is None:
        asyncio.run(_drop_database(system.database_url))
    else:
        system.postgres.stop()


async def _drop_streams(system: RunningSystem) -> None:
    client = await nats.connect(system.nats_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        for stream in (system.names.stream, f"{system.names.stream}_DEAD", system.names.bench_stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
    finally:
        await client.close()


async def _drop_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await admin.execute(f'drop database if exists "{url.database}" with (force)')
    finally:
        await admin.close()
