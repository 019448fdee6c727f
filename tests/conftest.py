"""Fixtures every tier shares: one database and one set of stream names per test run.

The session's PostgreSQL and NATS are chosen once at start (tests/support/servers.py: configured, already
running, testcontainers, or embedded ones started for the session); a test that must stop the broker starts
its own nats-server instead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from shared.db import asyncpg_dsn, ensure_database
from shared.settings import Settings
from tests.support.servers import DATABASE_URL_VARIABLE, NATS_URL_VARIABLE, close_session_servers, session_servers

RUN_ID = uuid.uuid4().hex[:10]
REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Choose the session's servers and publish them in the environment for child processes."""
    chosen = session_servers(os.environ)
    config.add_cleanup(close_session_servers)
    os.environ[DATABASE_URL_VARIABLE] = chosen.database.url
    os.environ[NATS_URL_VARIABLE] = chosen.nats.url


def pytest_report_header(config: pytest.Config) -> str:
    return session_servers(os.environ).report_line()


def pytest_sessionstart(session: pytest.Session) -> None:
    # -q hides the report header; the choice of servers is still worth one line.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0:
        reporter.write_line(session_servers(os.environ).report_line())


def __getattr__(name: str) -> str:
    """TEST_DATABASE_SERVER and TEST_NATS_URL: known only once the session has chosen its servers."""
    if name == "TEST_DATABASE_SERVER":
        return session_servers(os.environ).database.url
    if name == "TEST_NATS_URL":
        return session_servers(os.environ).nats.url
    raise AttributeError(name)


def make_settings(name: str, **overrides: object) -> Settings:
    """Settings whose database, subjects and stream are this run's own (`name` keeps tests apart)."""
    tag = f"{RUN_ID}_{name}".replace("-", "_")
    servers = session_servers(os.environ)
    values: dict[str, object] = {
        "database_url": f"{servers.database.url.rstrip('/')}/sgtest_{tag}",
        "nats_url": servers.nats.url,
        "subject_root": f"sgt{tag}",
        "stream_name": f"SGT_{tag}",
        "policy_dir": str(REPO_ROOT / "deploy" / "policies"),
        "outbox_poll_seconds": 0.2,
        "ack_wait_seconds": 5.0,
        "signing_key": "test-signing-key",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def drop_test_resources(settings: Settings) -> None:
    """Remove a test's database and streams (they are per-run; nothing else is touched)."""
    admin = await asyncpg.connect(asyncpg_dsn(settings.database_url.rsplit("/", 1)[0] + "/postgres"))
    try:
        name = settings.database_url.rsplit("/", 1)[1]
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()
    try:
        client = await nats.connect(settings.nats_url, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        return
    try:
        js = client.jetstream()
        for stream in (settings.stream_name, f"{settings.stream_name}_DEAD", f"{settings.stream_name}_AUDIT"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
    finally:
        await client.close()


@pytest.fixture
async def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """This test's own database (created), stream names and audit key files; all removed afterwards."""
    monkeypatch.setenv("SAFEGUARD_AUDIT_SIGNING_KEY_PATH", str(tmp_path / "audit" / "head-signing-key.pem"))
    monkeypatch.setenv("SAFEGUARD_AUDIT_WITNESS_LOG_PATH", str(tmp_path / "audit" / "witness.jsonl"))
    monkeypatch.setenv("SAFEGUARD_AUDIT_KEK_PATH", str(tmp_path / "audit" / "key-encryption-key"))
    chosen = make_settings(uuid.uuid4().hex[:8], actor_keys_dir=str(tmp_path / "actor-keys"))
    await ensure_database(chosen.database_url)
    yield chosen
    await drop_test_resources(chosen)


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[tuple[Any, Any, Settings]]:
    """A private nats-server with the users and permissions `safeguard up` gives it, for this test's subjects."""
    from services.launcher.embedded_nats import EmbeddedNats
    from services.launcher.nats_auth import prepare_nats_auth
    from shared.subjects import Subjects

    chosen = make_settings(f"auth_{uuid.uuid4().hex[:6]}")
    auth = prepare_nats_auth(tmp_path / "auth", subjects=Subjects.from_settings(chosen))
    server = EmbeddedNats(tmp_path / "nats", config_file=auth.config_file)
    server.start()
    yield server, auth, chosen.model_copy(update={"nats_url": server.url})
    server.stop()


@pytest.fixture
async def bus(secured_server: tuple[Any, Any, Settings]) -> AsyncIterator[Any]:
    """The secured server with its streams declared by the admin identity; `bus.connect(identity)` gives clients."""
    from shared.identities import ADMIN
    from shared.messaging import ensure_streams
    from shared.subjects import Subjects
    from tests.support.secured_bus import Bus

    server, auth, chosen = secured_server
    secured = Bus(server=server, auth=auth, settings=chosen, subjects=Subjects.from_settings(chosen))
    admin = await secured.connect(ADMIN)
    await ensure_streams(admin.jetstream(), chosen)
    yield secured
    await secured.close()


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[object]:
    """A nats-server of this test's own on a free port, which the test may stop and start again."""
    from services.launcher.embedded_nats import EmbeddedNats

    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()
