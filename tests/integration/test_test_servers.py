"""How a test session picks its PostgreSQL and NATS: configured, already running, container, or its own."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from services.launcher.embedded_nats import EmbeddedNats, find_nats_server
from services.launcher.ports import LOOPBACK, free_port, is_listening, wait_until_listening
from services.launcher.processes import stop_process
from shared.db import asyncpg_dsn
from tests.support.servers import Choice, SessionServers, choose_servers, docker_engine_answers, session_servers

pytestmark = pytest.mark.integration

UNUSED_DATABASE = "postgresql+asyncpg://postgres@db.example.org:5432"
UNUSED_NATS = "nats://nats.example.org:4222"


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def _publish_and_create_table(servers: SessionServers) -> None:
    """The chosen servers serve: a JetStream publish is acknowledged and a table can be created and used."""
    client = await nats.connect(servers.nats.url)
    try:
        js = client.jetstream()
        stream = f"FIXTURE_{uuid.uuid4().hex[:8]}"
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        ack = await js.publish(f"{stream.lower()}.hello", b"synthetic")
        assert (ack.stream, ack.seq) == (stream, 1)
        await js.delete_stream(stream)
    finally:
        await client.close()
    connection = await asyncpg.connect(asyncpg_dsn(f"{servers.database.url}/postgres"))
    try:
        table = f"fixture_{uuid.uuid4().hex[:8]}"
        await connection.execute(f"create table {table} (note text not null)")
        await connection.execute(f"insert into {table} values ('synthetic')")
        assert await connection.fetchval(f"select note from {table}") == "synthetic"
        await connection.execute(f"drop table {table}")
    finally:
        await connection.close()


@pytest.fixture
def nats_without_jetstream(tmp_path: Path) -> Iterator[int]:
    """A plain nats-server (no JetStream) on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [str(find_nats_server()), "--addr", LOOPBACK, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until_listening(port), "the plain nats-server did not start"
        yield port
    finally:
        stop_process(process, grace_seconds=5.0)


async def test_with_nothing_listening_the_session_starts_its_own_servers_and_removes_them() -> None:
    servers = choose_servers(postgres_port=free_port(), nats_port=free_port())
    try:
        assert (servers.database.source, servers.nats.source) == ("embedded", "embedded")
        assert "nothing listens" in servers.database.reason
        assert "nothing listens" in servers.nats.reason
        await _publish_and_create_table(servers)
    finally:
        servers.close()
    assert not is_listening(_port_of(servers.database.url))
    assert not is_listening(_port_of(servers.nats.url))
    assert servers.workdir is not None and not servers.workdir.exists()


async def test_a_nats_with_jetstream_already_listening_is_used(tmp_path: Path) -> None:
    running = EmbeddedNats(tmp_path / "nats")
    running.start()
    try:
        servers = choose_servers(configured_database=UNUSED_DATABASE, nats_port=running.port)
        servers.close()
    finally:
        running.stop()
    assert servers.nats.source == "running"
    assert servers.nats.url == running.url
    assert servers.workdir is None, "nothing was started"


async def test_a_nats_without_jetstream_is_passed_over(nats_without_jetstream: int) -> None:
    servers = choose_servers(configured_database=UNUSED_DATABASE, nats_port=nats_without_jetstream)
    try:
        assert servers.nats.source == "embedded"
        assert "has no JetStream" in servers.nats.reason
        assert servers.nats.url != f"nats://{LOOPBACK}:{nats_without_jetstream}"
    finally:
        servers.close()


async def test_containers_asked_for_without_a_docker_engine_fall_back_to_embedded() -> None:
    if docker_engine_answers():
        pytest.skip("a Docker engine answers here")
    servers = choose_servers(configured_database=UNUSED_DATABASE, nats_port=free_port(), containers=True)
    try:
        assert servers.nats.source == "embedded"
        assert "no Docker engine answered" in servers.nats.reason
    finally:
        servers.close()


@pytest.mark.skipif(os.environ.get("SAFEGUARD_TEST_CONTAINERS") != "1", reason="SAFEGUARD_TEST_CONTAINERS not set")
async def test_with_a_docker_engine_and_containers_asked_for_testcontainers_provides_both() -> None:
    if not docker_engine_answers():
        pytest.skip("no Docker engine answers here")
    servers = choose_servers(postgres_port=free_port(), nats_port=free_port(), containers=True)
    try:
        assert (servers.database.source, servers.nats.source) == ("container", "container")
        await _publish_and_create_table(servers)
    finally:
        servers.close()


def test_configured_urls_win_and_nothing_is_probed_or_started() -> None:
    servers = choose_servers(configured_database=UNUSED_DATABASE, configured_nats=UNUSED_NATS)
    servers.close()
    assert servers.database == Choice(UNUSED_DATABASE, "configured", "named by the environment")
    assert servers.nats.url == UNUSED_NATS and servers.nats.source == "configured"
    assert servers.workdir is None


def test_forcing_embedded_servers_ignores_configured_ones() -> None:
    servers = choose_servers(configured_database=UNUSED_DATABASE, configured_nats=UNUSED_NATS, force_embedded=True)
    try:
        assert (servers.database.source, servers.nats.source) == ("embedded", "embedded")
        assert "SAFEGUARD_TEST_FORCE_EMBEDDED=1" in servers.nats.reason
        assert is_listening(_port_of(servers.database.url)) and is_listening(_port_of(servers.nats.url))
    finally:
        servers.close()


async def test_the_servers_on_the_default_ports_are_used_where_they_answer() -> None:
    session = session_servers(os.environ)
    if (session.database.source, session.nats.source) != ("running", "running"):
        pytest.skip(f"this session does not use servers on the default ports ({session.report_line()})")
    servers = choose_servers()
    servers.close()
    assert servers.database.url == f"postgresql+asyncpg://postgres@{LOOPBACK}:5432"
    assert servers.nats.url == f"nats://{LOOPBACK}:4222"
    assert (servers.database.source, servers.nats.source) == ("running", "running")


def test_the_choice_is_reported_in_one_line_naming_each_server_and_why() -> None:
    servers = SessionServers(
        database=Choice("postgresql+asyncpg://postgres:s3cret@127.0.0.1:5999", "a", "b"),
        nats=Choice("nats://127.0.0.1:4999", "c", "d"),
    )
    line = servers.report_line()
    assert "\n" not in line
    assert "PostgreSQL postgresql+asyncpg://postgres:***@127.0.0.1:5999 [a: b]" in line
    assert "NATS nats://127.0.0.1:4999 [c: d]" in line
    assert "s3cret" not in line
