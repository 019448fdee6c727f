"""All four services as real processes against the real NATS and PostgreSQL, with this run's own names."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.launcher.ports import free_port
from shared.db import asyncpg_dsn, ensure_database
from shared.settings import Settings, as_environment
from tests.conftest import REPO_ROOT, drop_test_resources, make_settings
from tests.support.waiting import eventually

SERVICES = ("audit", "routing", "notifications", "intake")
# The staff console too, started before intake like the others that consume (`safeguard up`'s order).
WITH_CONSOLE = ("audit", "routing", "notifications", "console", "intake")


@dataclass
class System:
    settings: Settings
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def intake_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.intake_http_port}"

    @property
    def notifications_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.notifications_http_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SAFEGUARD_CONSOLE_HTTP_PORT']}"

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.settings.database_url)

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def environment(settings: Settings, mail_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEGUARD_")}
    env.update(as_environment(settings))
    env["SAFEGUARD_MAIL_SINK_DIR"] = str(mail_dir)
    env["SAFEGUARD_AUDIT_SIGNING_KEY_PATH"] = str(mail_dir.parent / "audit" / "head-signing-key.pem")
    env["SAFEGUARD_AUDIT_WITNESS_LOG_PATH"] = str(mail_dir.parent / "audit" / "witness.jsonl")
    env["SAFEGUARD_AUDIT_KEK_PATH"] = str(mail_dir.parent / "audit" / "key-encryption-key")
    # A send cut off by a killed process is resolved after this long (production: 2 minutes).
    env["SAFEGUARD_DELIVERY_SENDING_TIMEOUT_SECONDS"] = "3"
    # The console on plain http on loopback (as `safeguard up` serves it), sending reports to this intake.
    env["SAFEGUARD_CONSOLE_HTTP_PORT"] = str(free_port())
    env["SAFEGUARD_CONSOLE_SECURE_COOKIES"] = "false"
    env["SAFEGUARD_CONSOLE_INTAKE_URL"] = f"http://127.0.0.1:{settings.intake_http_port}"
    return env


async def ready(system: System) -> bool:
    for name, process in system.processes.items():
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{system.log_of(name)[-3000:]}")
    urls = [system.intake_url, system.notifications_url]
    if "console" in system.processes:
        urls.append(system.console_url)
    async with httpx.AsyncClient(timeout=1) as client:
        for url in urls:
            try:
                if (await client.get(f"{url}/healthz")).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    return all("ready" in system.log_of(name) for name in ("routing", "audit"))


@pytest.fixture
def e2e_settings(tmp_path: Path) -> Iterator[Settings]:
    yield make_settings(
        f"e2e_{tmp_path.name[-12:]}",
        intake_http_port=free_port(),
        notifications_http_port=free_port(),
        mail_sink_dir=str(tmp_path / "mail"),
        actor_keys_dir=str(tmp_path / "actor-keys"),
    )


@asynccontextmanager
async def started_system(
    settings: Settings,
    tmp_path: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    services: tuple[str, ...] = SERVICES,
) -> AsyncIterator[System]:
    """These services, each its own process (with `extra_env` added); stopped and its database dropped after."""
    await ensure_database(settings.database_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    running = System(settings, {**environment(settings, tmp_path / "mail"), **(extra_env or {})}, logs)
    for name in services:
        running.start(name)
    try:
        await eventually(lambda: ready(running), timeout=60, interval=0.2, what="all services ready")
        yield running
    finally:
        for name in list(running.processes):
            running.stop(name)
        await drop_test_resources(settings)


@pytest.fixture
async def system(e2e_settings: Settings, tmp_path: Path) -> AsyncIterator[System]:
    """Every service running as its own process; stopped (and this run's database dropped) afterwards."""
    async with started_system(e2e_settings, tmp_path) as running:
        yield running
