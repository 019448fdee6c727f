"""The PostgreSQL and NATS a test session runs against, chosen once: configured, running, container or embedded.

For each server independently, the first that applies wins:
1. the URL in SAFEGUARD_TEST_DATABASE_URL / SAFEGUARD_TEST_NATS_URL;
2. a server already answering on 127.0.0.1:5432 (user postgres, trust) / 127.0.0.1:4222 (with JetStream);
3. a testcontainers container, when SAFEGUARD_TEST_CONTAINERS=1 and a Docker engine answers;
4. the embedded server `safeguard up` uses, in a temporary folder removed at the end of the session.
SAFEGUARD_TEST_FORCE_EMBEDDED=1 skips straight to 4, so nothing on the default ports is touched.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import nats

from services.launcher.ports import LOOPBACK, is_listening

T = TypeVar("T")

DEFAULT_POSTGRES_PORT = 5432
DEFAULT_NATS_PORT = 4222
DATABASE_URL_VARIABLE = "SAFEGUARD_TEST_DATABASE_URL"
NATS_URL_VARIABLE = "SAFEGUARD_TEST_NATS_URL"
FORCE_EMBEDDED_VARIABLE = "SAFEGUARD_TEST_FORCE_EMBEDDED"
CONTAINERS_VARIABLE = "SAFEGUARD_TEST_CONTAINERS"
PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Choice:
    """One chosen server: its URL (PostgreSQL without a database name), where it came from and why."""

    url: str
    source: str
    reason: str


@dataclass
class SessionServers:
    """The servers of one test session, and what stops whatever the session started."""

    database: Choice
    nats: Choice
    cleanup: ExitStack = field(default_factory=ExitStack)
    workdir: Path | None = None

    def close(self) -> None:
        """Stop and remove the servers this session started (the others are left alone)."""
        self.cleanup.close()

    def report_line(self) -> str:
        """One line naming both servers and why each was chosen (passwords hidden)."""
        return (
            f"test servers: PostgreSQL {hide_password(self.database.url)} "
            f"[{self.database.source}: {self.database.reason}]; "
            f"NATS {self.nats.url} [{self.nats.source}: {self.nats.reason}]"
        )


def hide_password(url: str) -> str:
    """The URL with any password replaced by ***."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def _blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on its own loop in a helper thread (callers may be inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _postgres_answers(port: int) -> str | None:
    """None when user postgres gets in over trust on loopback `port`, else why not."""
    if not is_listening(port):
        return f"nothing listens on {LOOPBACK}:{port}"
    try:
        connection = await asyncpg.connect(
            host=LOOPBACK, port=port, user="postgres", database="postgres", password="", timeout=PROBE_SECONDS
        )
    except Exception as refused:
        return f"{LOOPBACK}:{port} did not let postgres in without a password ({type(refused).__name__})"
    await connection.close()
    return None


async def _jetstream_answers(port: int) -> str | None:
    """None when a NATS server with JetStream answers on loopback `port`, else why not."""
    if not is_listening(port):
        return f"nothing listens on {LOOPBACK}:{port}"
    try:
        client = await nats.connect(
            f"nats://{LOOPBACK}:{port}",
            connect_timeout=PROBE_SECONDS,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    except Exception as refused:
        return f"{LOOPBACK}:{port} did not answer as NATS ({type(refused).__name__})"
    try:
        await client.jetstream().account_info()
    except Exception as missing:
        return f"NATS on {LOOPBACK}:{port} has no JetStream ({type(missing).__name__})"
    finally:
        await client.close()
    return None


def docker_engine_answers() -> bool:
    """Whether a Docker engine answers a ping (the way testcontainers would reach it)."""
    try:
        from testcontainers.core.docker_client import DockerClient

        return bool(DockerClient().client.ping())
    except Exception:
        return False


class _Workdir:
    """A temporary folder for embedded servers, made on first use and removed when the session ends."""

    def __init__(self, cleanup: ExitStack) -> None:
        self._cleanup = cleanup
        self.path: Path | None = None

    def folder(self, name: str) -> Path:
        if self.path is None:
            # Directly under the system temp folder: as root, PostgreSQL's own user must be able to reach it.
            self.path = Path(tempfile.mkdtemp(prefix="safeguard-test-servers-"))
            self._cleanup.callback(shutil.rmtree, self.path, ignore_errors=True)
        return self.path / name


def _embedded_postgres(cleanup: ExitStack, workdir: _Workdir) -> str:
    from services.launcher.embedded_postgres import EmbeddedPostgres

    server = EmbeddedPostgres(workdir.folder("postgres"))
    cleanup.callback(server.stop)
    server.start()
    return server.url("postgres").rsplit("/", 1)[0]


def _embedded_nats(cleanup: ExitStack, workdir: _Workdir) -> str:
    from services.launcher.embedded_nats import EmbeddedNats

    server = EmbeddedNats(workdir.folder("nats"))
    cleanup.callback(server.stop)
    return server.start()


def _container_postgres(cleanup: ExitStack) -> str:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        "postgres:15", username="postgres", password=secrets.token_urlsafe(16), dbname="postgres", driver="asyncpg"
    )
    cleanup.callback(container.stop)
    container.start()
    return str(container.get_connection_url()).rsplit("/", 1)[0]


def _container_nats(cleanup: ExitStack) -> str:
    from testcontainers.community.nats import NatsContainer

    container = NatsContainer("nats:2", jetstream=True)
    cleanup.callback(container.stop)
    container.start()
    return str(container.nats_uri())


def _choose(
    *,
    configured: str | None,
    force_embedded: bool,
    probe: Callable[[], str | None],
    containers: Callable[[], tuple[bool, str]],
    start_container: Callable[[], str],
    start_embedded: Callable[[], str],
    running_url: str,
) -> Choice:
    """The decision for one server (see the module docstring for the order)."""
    if force_embedded:
        return Choice(start_embedded(), "embedded", f"{FORCE_EMBEDDED_VARIABLE}=1")
    if configured:
        return Choice(configured, "configured", "named by the environment")
    missing = probe()
    if missing is None:
        return Choice(running_url, "running", "answered on its default port")
    use_containers, why_not = containers()
    if use_containers:
        return Choice(start_container(), "container", f"{missing}; testcontainers asked for")
    return Choice(start_embedded(), "embedded", f"{missing}; {why_not}")


def choose_servers(
    *,
    configured_database: str | None = None,
    configured_nats: str | None = None,
    postgres_port: int = DEFAULT_POSTGRES_PORT,
    nats_port: int = DEFAULT_NATS_PORT,
    force_embedded: bool = False,
    containers: bool = False,
) -> SessionServers:
    """Choose (and if need be start) PostgreSQL and NATS for a session; call `close()` when done."""
    cleanup = ExitStack()
    workdir = _Workdir(cleanup)
    engine: list[bool] = []

    def containers_wanted() -> tuple[bool, str]:
        if not containers:
            return False, f"{CONTAINERS_VARIABLE} not set"
        if not engine:
            engine.append(docker_engine_answers())
        return engine[0], "no Docker engine answered"

    try:
        database = _choose(
            configured=configured_database,
            force_embedded=force_embedded,
            probe=lambda: _blocking(lambda: _postgres_answers(postgres_port)),
            containers=containers_wanted,
            start_container=lambda: _container_postgres(cleanup),
            start_embedded=lambda: _embedded_postgres(cleanup, workdir),
            running_url=f"postgresql+asyncpg://postgres@{LOOPBACK}:{postgres_port}",
        )
        broker = _choose(
            configured=configured_nats,
            force_embedded=force_embedded,
            probe=lambda: _blocking(lambda: _jetstream_answers(nats_port)),
            containers=containers_wanted,
            start_container=lambda: _container_nats(cleanup),
            start_embedded=lambda: _embedded_nats(cleanup, workdir),
            running_url=f"nats://{LOOPBACK}:{nats_port}",
        )
    except BaseException:
        cleanup.close()
        raise
    return SessionServers(database=database, nats=broker, cleanup=cleanup, workdir=workdir.path)


def choose_from_environment(environ: Mapping[str, str]) -> SessionServers:
    """`choose_servers` as the SAFEGUARD_TEST_* variables ask."""
    return choose_servers(
        configured_database=environ.get(DATABASE_URL_VARIABLE) or None,
        configured_nats=environ.get(NATS_URL_VARIABLE) or None,
        force_embedded=environ.get(FORCE_EMBEDDED_VARIABLE) == "1",
        containers=environ.get(CONTAINERS_VARIABLE) == "1",
    )


_session: list[SessionServers] = []


def session_servers(environ: Mapping[str, str]) -> SessionServers:
    """This process's servers, chosen on the first call (from `environ`) and reused after."""
    if not _session:
        _session.append(choose_from_environment(environ))
    return _session[0]


def close_session_servers() -> None:
    """Stop whatever `session_servers` started."""
    while _session:
        _session.pop().close()
