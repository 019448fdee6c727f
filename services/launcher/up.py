"""`safeguard up` from start to clean stop: servers, database, services, readiness, supervision."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from services.launcher.banner import Endpoints, browsable_host, format_banner
from services.launcher.database_roles import prepare_database_roles, shown_database_url
from services.launcher.embedded_nats import EmbeddedNats
from services.launcher.embedded_postgres import EmbeddedPostgres
from services.launcher.keeper import Keeper
from services.launcher.nats_auth import NatsAuth, declare_streams, prepare_nats_auth
from services.launcher.ports import port_is_free
from services.launcher.privileges import DEFAULT_POSTGRES_SYSTEM_USER
from services.launcher.secret_files import persistent_secret
from services.launcher.seed import seed_dsl, sign_in_hint
from services.launcher.supervisor import (
    SERVICE_NAMES,
    ServiceGroup,
    http_ok,
    service_command,
    service_environment,
    wait_for,
)
from services.notifications.stand_ins import add_stand_ins, command_with_stand_ins
from shared.db import ensure_database
from shared.settings import Settings
from shared.subjects import Subjects

APPLICATION_DATABASE = "safeguard"
LAUNCH_ERRORS = (
    RuntimeError,
    OSError,
    ValueError,
    TimeoutError,
    asyncpg.PostgresError,
    subprocess.SubprocessError,
)

SignalHandler = Callable[[int, FrameType | None], object] | int | None


@dataclass(frozen=True)
class UpOptions:
    """Everything `safeguard up` was asked for."""

    data_dir: Path
    http_port: int = 8080
    notifications_port: int = 8081
    console_port: int = 8082
    nats_port: int | None = None
    postgres_port: int | None = None
    nats_url: str | None = None
    database_url: str | None = None
    postgres_system_user: str = DEFAULT_POSTGRES_SYSTEM_USER
    startup_timeout: float = 60.0


def _install_stop_handlers(stop: threading.Event) -> dict[int, SignalHandler]:
    """Turn SIGINT and SIGTERM into a request to stop; returns the handlers they replace."""

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}


def run_up(options: UpOptions, *, out: TextIO, err: TextIO) -> int:
    """Run until Ctrl-C/SIGTERM (exit 0) or until a service is in a crash loop or startup fails (exit 1)."""
    stop = threading.Event()
    previous = _install_stop_handlers(stop)
    launch = _Launch(options, stop=stop, err=err)
    try:
        endpoints = launch.start()
        if endpoints is None:
            return 0 if stop.is_set() else 1
        print(format_banner(endpoints), file=out, flush=True)
        return launch.supervise()
    except LAUNCH_ERRORS as error:
        print(f"safeguard up: {error}", file=err, flush=True)
        return 1
    finally:
        launch.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Launch:
    """The servers and services one `run_up` owns, so `shutdown` can stop whatever was started."""

    def __init__(self, options: UpOptions, *, stop: threading.Event, err: TextIO) -> None:
        self.options = options
        self.stop = stop
        self.err = err
        self.nats: EmbeddedNats | None = None
        self.nats_auth: NatsAuth | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.services: ServiceGroup | None = None

    def say(self, message: str) -> None:
        """A progress line on stderr."""
        print(f"safeguard up: {message}", file=self.err, flush=True)

    def start(self) -> Endpoints | None:
        """Bring everything up; None when stopped early or a service failed to become ready."""
        options = self.options
        for port, option in (
            (options.http_port, "--http-port"),
            (options.notifications_port, "--notifications-port"),
            (options.console_port, "--console-port"),
        ):
            if not port_is_free(port):
                raise RuntimeError(f"port {port} is already in use; choose another with {option}")
        # Private: the mail sink and the database hold safeguarding details.
        options.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        nats_url = options.nats_url or self._start_nats()
        database_url = options.database_url or self._start_postgres()
        if self.stop.is_set():
            return None
        if asyncio.run(ensure_database(database_url)):
            self.say(f"created database {make_url(database_url).database}")
        own_environment: dict[str, dict[str, str]] = {}
        if self.nats_auth is not None:
            own_environment = self.nats_auth.service_environments()
        database_roles = prepare_database_roles(database_url, folder=options.data_dir / "credentials" / "database")
        if database_roles is None:
            self.say("could not create database roles with the given URL; every service connects with it")
        for service, extra in (database_roles or {}).items():
            own_environment.setdefault(service, {}).update(extra)
        environment = service_environment(
            os.environ,
            nats_url=nats_url,
            database_url=database_url,
            intake_port=options.http_port,
            notifications_port=options.notifications_port,
            data_dir=options.data_dir,
            signing_key=persistent_secret(options.data_dir / "signing.key"),
        )
        environment["SAFEGUARD_CONSOLE_HTTP_PORT"] = str(options.console_port)
        intake = f"http://{browsable_host(environment.get('SAFEGUARD_INTAKE_HTTP_HOST', ''))}:{options.http_port}"
        environment.setdefault("SAFEGUARD_CONSOLE_INTAKE_URL", intake)
        stand_ins = add_stand_ins(environment, data_dir=options.data_dir)
        self.services = ServiceGroup(
            environment=environment,
            output=self.err,
            names=(*stand_ins, *SERVICE_NAMES),
            command_for=command_with_stand_ins(service_command),
            own_environment=own_environment,
        )
        self.services.start()
        notifications_host = browsable_host(environment.get("SAFEGUARD_NOTIFICATIONS_HTTP_HOST", ""))
        notifications = f"http://{notifications_host}:{options.notifications_port}"
        console = f"http://127.0.0.1:{options.console_port}"
        if not self._wait_ready([f"{intake}/healthz", f"{notifications}/healthz", f"{console}/healthz"]):
            return None
        shown = shown_database_url(database_url, per_service_roles=database_roles is not None)
        hint = self._seed_console_account(database_url, policy_dir=Path(environment.get("SAFEGUARD_POLICY_DIR", "")))
        return Endpoints(intake, notifications, nats_url, shown, console_base=console, console_sign_in=hint)

    def _seed_console_account(self, database_url: str, *, policy_dir: Path) -> str:
        """The seeded DSL (made on the first start), and how to sign in as them; empty when none could be made."""
        try:
            made = asyncio.run(seed_dsl(database_url, data_dir=self.options.data_dir, policy_dir=policy_dir))
        except (OSError, ValueError, asyncpg.PostgresError, SQLAlchemyError) as error:
            self.say(f"no console account was seeded: {type(error).__name__}")
            return ""
        return sign_in_hint(self.options.data_dir) if made else ""

    def supervise(self) -> int:
        """Keep the services up (restarting the dead) until asked to stop (0) or one is in a crash loop (1)."""
        assert self.services is not None
        keeper = Keeper(self.services, clock=time.monotonic, say=self.say)
        while not self.stop.wait(0.2):
            crash_loop = keeper.step()
            if crash_loop is not None:
                self.say(f"{crash_loop}; stopping the others")
                return 1
        self.say("stopping")
        return 0

    def shutdown(self) -> None:
        """Services first, then NATS and PostgreSQL, each cleanly."""
        if self.services is not None:
            self.services.stop()
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def _start_nats(self) -> str:
        """Start the embedded NATS server with one user per service (no anonymous access), declare the streams."""
        folder = self.options.data_dir / "nats"
        settings = Settings()
        self.nats_auth = prepare_nats_auth(folder, subjects=Subjects.from_settings(settings))
        self.nats = EmbeddedNats(folder, port=self.options.nats_port, config_file=self.nats_auth.config_file)
        url = self.nats.start()
        self.say(f"started nats-server at {url} (store {self.nats.store_dir}, users in {self.nats_auth.config_file})")
        asyncio.run(declare_streams(url, auth=self.nats_auth, settings=settings))
        return url

    def _start_postgres(self) -> str:
        """Start the embedded PostgreSQL and return the application database's URL."""
        self.postgres = EmbeddedPostgres(
            self.options.data_dir / "postgres",
            port=self.options.postgres_port,
            system_user=self.options.postgres_system_user,
        )
        self.postgres.start()
        for note in self.postgres.notes:
            self.say(note)
        user = f" as {self.postgres.run_as}" if self.postgres.run_as else ""
        self.say(f"started PostgreSQL {self.postgres.binaries.major}{user} on port {self.postgres.port}")
        return self.postgres.url(APPLICATION_DATABASE)

    def _wait_ready(self, health_urls: list[str]) -> bool:
        """Wait for every health URL, giving up when asked to stop or a service dies."""
        assert self.services is not None
        services = self.services

        def all_healthy() -> bool:
            return all(http_ok(url) for url in health_urls)

        def give_up() -> bool:
            return self.stop.is_set() or services.exited() is not None

        if wait_for(all_healthy, deadline_seconds=self.options.startup_timeout, give_up=give_up):
            return True
        dead = services.exited()
        if dead is not None:
            self.say(f"service {dead[0]} exited with code {dead[1]} while starting")
        elif not self.stop.is_set():
            self.say(f"not ready after {self.options.startup_timeout:.0f}s: {', '.join(health_urls)}")
        return False
