"""The pieces of `safeguard up` that need no servers: ports, commands, the root decision, supervision."""

from __future__ import annotations

import io
import json
import os
import pwd
import shlex
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.launcher import (
    banner,
    embedded_nats,
    embedded_postgres,
    ports,
    postgres_binaries,
    privileges,
    processes,
    supervisor,
    up,
)


def test_a_free_port_can_be_bound_and_a_listening_one_cannot() -> None:
    port = ports.free_port()
    assert ports.port_is_free(port)
    with socket.socket() as listener:
        listener.bind((ports.LOOPBACK, port))
        listener.listen()
        assert not ports.port_is_free(port)
        assert ports.is_listening(port)
    assert not ports.is_listening(port)


def test_a_port_whose_last_connection_is_in_time_wait_is_free_again() -> None:
    port = ports.free_port()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ports.LOOPBACK, port))
        listener.listen()
        with socket.create_connection((ports.LOOPBACK, port)) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first, so its end waits in TIME_WAIT
            client.recv(1)
    assert ports.port_is_free(port)


def test_free_ports_differ_between_calls_often_enough_to_pick_two_servers() -> None:
    assert len({ports.free_port() for _ in range(5)}) > 1


@pytest.mark.parametrize(
    ("euid", "expected"),
    [(0, "safeguard-pg"), (1000, None), (65534, None)],
    ids=["root runs postgres as the system user", "a normal user runs it directly", "nobody too"],
)
def test_postgres_runs_as_the_system_user_only_when_we_are_root(euid: int, expected: str | None) -> None:
    assert privileges.postgres_run_as(euid=euid, system_user="safeguard-pg") == expected


def test_commands_are_wrapped_in_runuser_only_for_another_user() -> None:
    assert privileges.as_user(["pg_ctl", "status"], user=None) == ["pg_ctl", "status"]
    assert privileges.as_user(["pg_ctl", "status"], user="safeguard-pg") == [
        "runuser",
        "-u",
        "safeguard-pg",
        "--",
        "pg_ctl",
        "status",
    ]


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A root-owned 0700 folder directly under the system temp folder (its parents are traversable)."""
    folder = Path(tempfile.mkdtemp(prefix="safeguard-launcher-"))
    yield folder
    for inner in sorted(folder.rglob("*"), reverse=True):
        inner.rmdir() if inner.is_dir() else inner.unlink()
    folder.rmdir()


def _stranger() -> pwd.struct_passwd:
    """A passwd entry for a uid nobody uses, so mode bits decide alone."""
    return pwd.struct_passwd(("nobody-in-test", "x", 54_321, 54_321, "", "/nonexistent", "/usr/sbin/nologin"))


def test_traversal_is_granted_with_the_search_bit_only(private_folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a folder owned by someone other than the stranger; root makes one")
    cluster = private_folder / "data" / "postgres"
    cluster.mkdir(parents=True)
    (private_folder / "data").chmod(0o700)
    stranger = _stranger()

    opened = privileges.grant_traversal(cluster, entry=stranger)

    assert opened == [private_folder, private_folder / "data"]
    for folder in opened:
        mode = stat.S_IMODE(folder.stat().st_mode)
        assert mode == 0o701, oct(mode)
    assert privileges.grant_traversal(cluster, entry=stranger) == []


def test_can_traverse_follows_owner_group_and_other_bits(private_folder: Path) -> None:
    stranger = _stranger()
    private_folder.chmod(0o700)
    assert not privileges.can_traverse(private_folder, uid=stranger.pw_uid, gids={stranger.pw_gid})
    assert privileges.can_traverse(private_folder, uid=os.geteuid(), gids=set())
    private_folder.chmod(0o710)
    owner_group = private_folder.stat().st_gid
    assert privileges.can_traverse(private_folder, uid=stranger.pw_uid, gids={owner_group})
    assert not privileges.can_traverse(private_folder, uid=stranger.pw_uid, gids={stranger.pw_gid})


def test_nats_listens_on_loopback_with_jetstream_in_the_given_store(tmp_path: Path) -> None:
    command = embedded_nats.nats_command(
        Path("/opt/nats-server"), port=14222, store_dir=tmp_path / "store", pid_file=tmp_path / "pid"
    )
    assert command[0] == "/opt/nats-server"
    assert "--jetstream" in command
    assert command[command.index("--addr") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "14222"
    assert command[command.index("--store_dir") + 1] == str(tmp_path / "store")


def test_the_nats_server_binary_of_the_wheel_is_found() -> None:
    binary = embedded_nats.find_nats_server()
    assert binary.name == "nats-server"
    assert os.access(binary, os.X_OK)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("postgres (PostgreSQL) 18.6\n", 18),
        ("pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n", 15),
        ("pg_ctl (PostgreSQL) 9.6.24", 9),
        ("something else", None),
    ],
)
def test_the_major_version_is_read_from_version_output(output: str, major: int | None) -> None:
    assert postgres_binaries.parse_major_version(output) == major


def test_the_cluster_version_comes_from_pg_version(tmp_path: Path) -> None:
    assert postgres_binaries.cluster_major_version(tmp_path) is None
    (tmp_path / "PG_VERSION").write_text("18\n")
    assert postgres_binaries.cluster_major_version(tmp_path) == 18


def test_a_configured_bin_dir_is_tried_before_the_bundled_one(tmp_path: Path) -> None:
    candidates = postgres_binaries.candidate_bin_dirs(configured=tmp_path)
    assert candidates[0] == tmp_path
    assert candidates[1] == postgres_binaries.bundled_bin_dir()
    assert len(candidates) == len(set(candidates))


def test_binaries_must_match_an_existing_clusters_version(tmp_path: Path) -> None:
    bundled = postgres_binaries.bundled_bin_dir()
    assert bundled is not None
    found = postgres_binaries.choose_binaries([tmp_path, bundled], run_as=None, cluster_major=None)
    assert found.bin_dir == bundled
    with pytest.raises(postgres_binaries.PostgresBinariesError, match=r"PostgreSQL 9 \(the existing"):
        postgres_binaries.choose_binaries([bundled], run_as=None, cluster_major=9)


def test_postgres_listens_on_loopback_tcp_only_and_stops_fast(tmp_path: Path) -> None:
    binaries = postgres_binaries.PostgresBinaries(bin_dir=Path("/pg/bin"), major=18)
    start = embedded_postgres.start_command(
        binaries, pgdata=tmp_path / "cluster", log_file=tmp_path / "log", port=15432
    )
    assert start[:2] == ["/pg/bin/pg_ctl", "start"]
    assert "-w" in start
    assert shlex.split(start[start.index("-o") + 1]) == ["-p", "15432", "-h", "127.0.0.1", "-k", ""]
    stop = embedded_postgres.stop_command(binaries, pgdata=tmp_path / "cluster")
    assert stop[stop.index("-m") + 1] == "fast"
    initdb = embedded_postgres.initdb_command(binaries, pgdata=tmp_path / "cluster", password_file=tmp_path / "pw")
    assert initdb[initdb.index("--auth-host") + 1] == "scram-sha-256"
    assert initdb[initdb.index("--pwfile") + 1] == str(tmp_path / "pw")


def _service_environment(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return supervisor.service_environment(
        base,
        nats_url="nats://127.0.0.1:4333",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5999/safeguard",
        intake_port=18080,
        notifications_port=18081,
        data_dir=data_dir,
        signing_key="kept-key",
    )


def test_services_get_the_launchers_servers_and_ports(tmp_path: Path) -> None:
    environment = _service_environment(
        {"SAFEGUARD_NATS_URL": "nats://elsewhere:4222", "SAFEGUARD_MAIL_SINK_DIR": "/kept", "HOME": "/root"},
        tmp_path,
    )
    assert environment["SAFEGUARD_NATS_URL"] == "nats://127.0.0.1:4333"
    assert environment["SAFEGUARD_DATABASE_URL"].endswith(":5999/safeguard")
    assert environment["SAFEGUARD_INTAKE_HTTP_PORT"] == "18080"
    assert environment["SAFEGUARD_NOTIFICATIONS_HTTP_PORT"] == "18081"
    assert environment["SAFEGUARD_MAIL_SINK_DIR"] == "/kept"
    assert environment["HOME"] == "/root"
    assert environment["PYTHONPATH"].split(":")[0] == str(supervisor.project_root())
    assert (supervisor.project_root() / "services" / "launcher").is_dir()


def test_the_mail_sink_defaults_into_the_data_folder(tmp_path: Path) -> None:
    environment = _service_environment({}, tmp_path)
    assert environment["SAFEGUARD_MAIL_SINK_DIR"] == str(tmp_path / "mail")
    assert environment["SAFEGUARD_SIGNING_KEY"] == "kept-key"
    assert environment["SAFEGUARD_CONSOLE_URL"] == "http://127.0.0.1:18081"


def test_the_signing_key_is_made_once_privately_and_then_kept(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    first = up.persistent_secret(key_file)
    assert len(first) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert up.persistent_secret(key_file) == first


def test_an_exited_but_unreaped_process_does_not_count_as_alive() -> None:
    child = subprocess.Popen(["true"])
    try:
        assert processes.pid_alive(os.getpid())
        assert supervisor.wait_for(
            lambda: not processes.pid_alive(child.pid), deadline_seconds=10, give_up=lambda: False
        )
    finally:
        child.wait()
    assert processes.command_line(child.pid) == []


def test_each_service_is_its_own_python_module_process() -> None:
    assert supervisor.SERVICE_NAMES[-1] == "intake"
    assert set(supervisor.SERVICE_NAMES) == {"intake", "routing", "notifications", "console", "audit"}
    assert supervisor.service_command("audit") == [sys.executable, "-m", "services.audit"]


def _stub(script: str) -> list[str]:
    return [sys.executable, "-c", script]


def test_a_dead_service_is_noticed_and_its_output_is_prefixed() -> None:
    output = io.StringIO()
    scripts = {
        "steady": "import time; print('ready', flush=True); time.sleep(60)",
        "fragile": "raise SystemExit(3)",
    }
    group = supervisor.ServiceGroup(
        environment=dict(os.environ),
        output=output,
        names=("steady", "fragile"),
        command_for=lambda n: _stub(scripts[n]),
    )
    group.start()
    try:
        assert supervisor.wait_for(lambda: group.exited() is not None, deadline_seconds=10, give_up=lambda: False)
        assert group.exited() == ("fragile", 3)
        assert supervisor.wait_for(lambda: "ready" in output.getvalue(), deadline_seconds=10, give_up=lambda: False)
    finally:
        group.stop(grace_seconds=5)
    assert group.processes["steady"].returncode == -15
    assert "steady       | ready\n" in output.getvalue()


def test_a_service_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    output = io.StringIO()
    group = supervisor.ServiceGroup(
        environment=dict(os.environ),
        output=output,
        names=("stubborn",),
        command_for=lambda _: _stub(stubborn),
    )
    group.start()
    assert supervisor.wait_for(lambda: "up" in output.getvalue(), deadline_seconds=10, give_up=lambda: False)
    group.stop(grace_seconds=0.5)
    assert group.processes["stubborn"].returncode == -9


def test_waiting_gives_up_when_asked() -> None:
    assert not supervisor.wait_for(lambda: False, deadline_seconds=30, give_up=lambda: True)
    assert not supervisor.http_ok(f"http://127.0.0.1:{ports.free_port()}/healthz")


def test_the_banner_names_every_endpoint_and_a_working_sample_request() -> None:
    endpoints = banner.Endpoints(
        intake_base="http://127.0.0.1:18080",
        notifications_base="http://127.0.0.1:18081",
        nats_url="nats://127.0.0.1:4333",
        database_url="postgresql+asyncpg://postgres:pw@127.0.0.1:5999/safeguard",
    )
    text = banner.format_banner(endpoints)
    assert "intake API:    http://127.0.0.1:18080/api/v1/schools/{school_id}/concerns" in text
    assert "notifications: http://127.0.0.1:18081" in text
    assert "NATS:          nats://127.0.0.1:4333" in text
    assert "database:      postgresql+asyncpg://postgres:pw@127.0.0.1:5999/safeguard" in text
    curl = shlex.split(banner.sample_curl(endpoints))
    assert curl[curl.index("-X") + 1] == "POST"
    assert "http://127.0.0.1:18080/api/v1/schools/st-marks/concerns" in curl
    assert json.loads(curl[curl.index("-d") + 1]) == banner.SAMPLE_CONCERN


@pytest.mark.parametrize(("bound", "shown"), [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")])
def test_wildcard_hosts_are_shown_as_loopback(bound: str, shown: str) -> None:
    assert banner.browsable_host(bound) == shown


def test_the_cli_offers_up_with_its_options() -> None:
    runner = CliRunner()
    assert "up" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["up", "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--http-port", "--nats-port", "--postgres-port"):
        assert option in result.output
