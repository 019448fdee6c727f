"""The embedded NATS and PostgreSQL of `safeguard up`: they serve, stop cleanly and keep their data."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import nats
import pytest

from services.launcher.embedded_nats import EmbeddedNats
from services.launcher.embedded_postgres import EmbeddedPostgres
from services.launcher.ports import is_listening
from shared.db import asyncpg_dsn, ensure_database

pytestmark = pytest.mark.integration

STREAM = "LAUNCHER_KEPT"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data folder directly under the system temp folder (PostgreSQL's user must reach it as root)."""
    folder = Path(tempfile.mkdtemp(prefix="safeguard-up-"))
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _servers(data_dir: Path) -> Iterator[tuple[EmbeddedNats, EmbeddedPostgres]]:
    """Both embedded servers on `data_dir`, stopped cleanly on the way out."""
    nats_server, postgres = EmbeddedNats(data_dir / "nats"), EmbeddedPostgres(data_dir / "postgres")
    nats_server.start()
    try:
        postgres.start()
        try:
            yield nats_server, postgres
        finally:
            postgres.stop()
    finally:
        nats_server.stop()


async def _remember_something(nats_url: str, database_url: str) -> None:
    """Leave one JetStream message and one table row behind."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name=STREAM, subjects=["launcher.kept"])
        await js.publish("launcher.kept", b"still here")
    finally:
        await client.close()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await connection.fetchval("select 1") == 1
        await connection.execute("create table kept (note text not null)")
        await connection.execute("insert into kept values ('still here')")
    finally:
        await connection.close()


async def _recall(nats_url: str, database_url: str) -> tuple[int, list[str]]:
    """The message count of the stream and the rows of the table left by `_remember_something`."""
    client = await nats.connect(nats_url)
    try:
        messages = (await client.jetstream().stream_info(STREAM)).state.messages
    finally:
        await client.close()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        notes = [row["note"] for row in await connection.fetch("select note from kept")]
    finally:
        await connection.close()
    return messages, notes


async def test_the_embedded_servers_serve_and_keep_their_data_across_a_restart(data_dir: Path) -> None:
    with _servers(data_dir) as (first_nats, first_postgres):
        database_url = first_postgres.url("safeguard")
        assert await ensure_database(database_url) is True
        await _remember_something(first_nats.url, database_url)
    assert not is_listening(first_nats.port)
    assert not is_listening(first_postgres.port)

    with _servers(data_dir) as (again_nats, again_postgres):
        database_url = again_postgres.url("safeguard")
        assert await ensure_database(database_url) is False
        assert await _recall(again_nats.url, database_url) == (1, ["still here"])
        assert again_postgres.notes == []


async def test_the_cluster_accepts_only_a_password_on_loopback(data_dir: Path) -> None:
    postgres = EmbeddedPostgres(data_dir / "postgres")
    postgres.start()
    try:
        without_password = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(without_password)
        assert not list(postgres.pgdata.glob(".s.PGSQL.*")), "no Unix socket is opened"
        connection = await asyncpg.connect(asyncpg_dsn(postgres.url("postgres")))
        try:
            assert await connection.fetchval("show listen_addresses") == "127.0.0.1"
        finally:
            await connection.close()
    finally:
        postgres.stop()


async def test_servers_left_running_by_a_killed_launcher_are_stopped_and_replaced(data_dir: Path) -> None:
    orphan_nats, orphan_postgres = EmbeddedNats(data_dir / "nats"), EmbeddedPostgres(data_dir / "postgres")
    orphan_nats.start()
    orphan_postgres.start()
    orphan_process = orphan_nats.process
    assert orphan_process is not None
    try:
        with _servers(data_dir) as (nats_server, postgres):
            assert orphan_process.wait(timeout=10) == 0
            assert "stopped a PostgreSQL server left running on this data folder" in postgres.notes
            assert not is_listening(orphan_postgres.port)
            connection = await asyncpg.connect(asyncpg_dsn(postgres.url("postgres")))
            await connection.close()
            client = await nats.connect(nats_server.url)
            await client.close()
    finally:
        orphan_nats.stop()
