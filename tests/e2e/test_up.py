"""`safeguard up` as a user runs it: embedded servers, four services, a concern that survives a restart."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pyotp
import pytest

from services.console.accounts import add_account
from services.launcher.ports import free_port, is_listening
from shared.db import asyncpg_dsn, make_engine, session_factory
from shared.db_roles import role_url
from tests.support.console import PASSWORD, csrf_of
from tests.support.factories import report_json
from tests.support.reporting import post_until_accepted
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120.0
BANNER_LINE = re.compile(r"^\s+(intake API|notifications|NATS|database):\s+(\S+)\s*$")
CONSOLE_LINE = re.compile(r"^\s+console:\s+(\S+) ")


class RunningUp:
    """One `python -m services.cli up` process whose stdout is read line by line as it arrives."""

    def __init__(self, *, data_dir: Path, http_port: int, notifications_port: int, log_file: Path) -> None:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SAFEGUARD_")}
        self.log_file = log_file
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "up",
                    "--data-dir",
                    str(data_dir),
                    "--http-port",
                    str(http_port),
                    "--notifications-port",
                    str(notifications_port),
                    "--console-port",
                    str(free_port()),
                ],
                cwd=REPO_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def endpoints(self) -> dict[str, str]:
        """Wait for the ready banner and return its `label: URL` lines."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            found: dict[str, str] = {
                match.group(1): match.group(2) for line in list(self.lines) if (match := BANNER_LINE.match(line))
            }
            if {"intake API", "notifications", "NATS", "database"} <= set(found):
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no ready banner (exit {self.process.poll()}):\n{self.log_tail()}")

    def console_url(self) -> str:
        """The console's URL from the ready banner (read after `endpoints`)."""
        found = [match.group(1) for line in self.lines if (match := CONSOLE_LINE.match(line))]
        assert found, "the banner names the console"
        return found[0]

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal would send it; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=90)
        finally:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        """Last resort when a test fails midway."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-60:])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder under the system temp folder (PostgreSQL's own user must be able to reach it)."""
    folder = Path(tempfile.mkdtemp(prefix="safeguard-e2e-up-"))
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


def _port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


async def _ledger_count(database_url: str, reference: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(
            await connection.fetchval(
                "select count(*) from audit.ledger_events where event->'payload'->>'reference' = $1", reference
            )
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await connection.close()


async def test_a_concern_reported_before_a_restart_is_in_the_audit_ledger_after_it(
    data_dir: Path, tmp_path: Path
) -> None:
    http_port, notifications_port = free_port(), free_port()
    log_file = tmp_path / "safeguard-up.log"

    first = RunningUp(data_dir=data_dir, http_port=http_port, notifications_port=notifications_port, log_file=log_file)
    try:
        endpoints = first.endpoints()
        concerns_url = endpoints["intake API"].replace("{school_id}", "st-marks")
        assert concerns_url == f"http://127.0.0.1:{http_port}/api/v1/schools/st-marks/concerns"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(concerns_url, json=report_json())
        assert response.status_code == 202, response.text
        reference = response.json()["reference"]
        assert reference
    finally:
        exit_code = first.interrupt() if first.process.poll() is None else first.process.returncode
    assert exit_code == 0, first.log_tail()
    for stopped in (endpoints["NATS"], endpoints["database"], endpoints["intake API"]):
        assert not is_listening(_port_of(stopped)), f"{stopped} still listening after Ctrl-C"

    again = RunningUp(data_dir=data_dir, http_port=http_port, notifications_port=notifications_port, log_file=log_file)
    try:
        shown = again.endpoints()["database"]
        superuser_password = (data_dir / "postgres" / "superuser.password").read_text().strip()
        assert superuser_password not in "\n".join(again.lines), "the banner shows no superuser password"
        # Read the ledger as audit does: its own role, whose password `safeguard up` keeps under the data folder.
        audit_password = (data_dir / "credentials" / "database" / "safeguard_audit.password").read_text().strip()
        database_url = role_url(shown, role="safeguard_audit", password=audit_password)
        count = await eventually(
            lambda: _ledger_count(database_url, reference),
            until=lambda found: found >= 1,
            timeout=60,
            what=f"concern {reference} in audit.ledger after the restart",
        )
        assert count >= 1
        assert again.process.poll() is None, "every service is still running"
    finally:
        exit_code = again.interrupt() if again.process.poll() is None else again.process.returncode
    assert exit_code == 0, again.log_tail()


def _child_running(parent_pid: int, module: str) -> int | None:
    """The pid of the launcher's child process running `python -m <module>`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == parent_pid and module.encode() in argv:
            return int(entry.name)
    return None


async def test_intake_killed_with_sigkill_comes_back_and_a_retried_post_gets_its_first_reference(
    data_dir: Path, tmp_path: Path
) -> None:
    http_port, notifications_port = free_port(), free_port()
    running = RunningUp(
        data_dir=data_dir, http_port=http_port, notifications_port=notifications_port, log_file=tmp_path / "up.log"
    )
    try:
        concerns_url = running.endpoints()["intake API"].replace("{school_id}", "st-marks")
        headers = {"Idempotency-Key": f"retry-{os.getpid()}-{time.monotonic_ns()}"}
        report = report_json()
        async with httpx.AsyncClient(timeout=10) as client:
            first = await client.post(concerns_url, json=report, headers=headers)
            assert first.status_code == 202, first.text
            intake_pid = _child_running(running.process.pid, "services.intake")
            assert intake_pid is not None
            os.kill(intake_pid, signal.SIGKILL)
            killed_at = time.monotonic()

            again = await post_until_accepted(
                client, concerns_url, report=report, idempotency_key=headers["Idempotency-Key"], timeout=30
            )
            came_back_after = time.monotonic() - killed_at
        print(f"intake answered again {came_back_after:.1f}s after SIGKILL")
        assert again.json()["reference"] == first.json()["reference"]
        assert came_back_after < 15, came_back_after
        assert _child_running(running.process.pid, "services.intake") not in (None, intake_pid)
        assert running.process.poll() is None, "the system stayed up"
        assert "service intake restarted (restart 1)" in running.log_tail()
    finally:
        exit_code = running.interrupt() if running.process.poll() is None else running.process.returncode
    assert exit_code == 0, running.log_tail()


async def _viewers(database_url: str, case_id: str) -> list[str]:
    """Who the ledger says viewed the case."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "select event->'actor'->>'id' as viewer from audit.ledger_events"
            " where event_type = 'record.viewed' and aggregate_id = $1",
            case_id,
        )
    finally:
        await connection.close()
    return [row["viewer"] for row in rows]


async def _console_account(data_dir: Path, database: str, *, username: str) -> str:
    """A DSL account made as the console's own database role (its password kept by `safeguard up`); the TOTP secret."""
    password = (data_dir / "credentials" / "database" / "safeguard_console.password").read_text().strip()
    engine = make_engine(role_url(database, role="safeguard_console", password=password), pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            made = await add_account(
                session,
                username=username,
                password=PASSWORD,
                school_id="st-marks",
                person_id="s-bird",
                role="designated_safeguarding_lead",
            )
    finally:
        await engine.dispose()
    return made.totp_secret


async def _console_sign_in(client: httpx.AsyncClient, username: str, *, totp_secret: str) -> None:
    form = await client.get("/sign-in")
    data = {"csrf_token": csrf_of(form.text), "username": username, "password": PASSWORD}
    assert (await client.post("/sign-in", data=data)).status_code == 303
    form = await client.get("/sign-in/code")
    code = pyotp.TOTP(totp_secret).now()
    signed = await client.post("/sign-in/code", data={"csrf_token": csrf_of(form.text), "code": code})
    assert signed.status_code == 303, signed.text


async def test_the_console_runs_as_its_own_identities_a_dsl_signs_in_sees_a_new_concern_and_the_open_is_audited(
    data_dir: Path, tmp_path: Path
) -> None:
    running = RunningUp(
        data_dir=data_dir, http_port=free_port(), notifications_port=free_port(), log_file=tmp_path / "up.log"
    )
    try:
        endpoints = running.endpoints()
        console = running.console_url()
        assert (data_dir / "nats" / "credentials" / "console.password").is_file()
        # The README's promise: the banner names the console and how to sign in as the DSL it seeded.
        [console_line] = [line for line in running.lines if CONSOLE_LINE.match(line)]
        assert "sign in as dsl" in console_line and str(data_dir / "console-dsl.txt") in console_line
        assert "password: " in (data_dir / "console-dsl.txt").read_text()
        totp_secret = await _console_account(data_dir, endpoints["database"], username=f"dsl-{os.getpid()}")
        async with httpx.AsyncClient(timeout=10) as client:
            accepted = await client.post(endpoints["intake API"].replace("{school_id}", "st-marks"), json=report_json())
            assert accepted.status_code == 202, accepted.text
        reference = accepted.json()["reference"]
        async with httpx.AsyncClient(base_url=console, timeout=10) as client:
            assert (await client.get("/healthz")).text == "ok"
            await _console_sign_in(client, f"dsl-{os.getpid()}", totp_secret=totp_secret)
            # The read model is kept through the console's own NATS identity and database role.
            inbox = await eventually(
                lambda: client.get("/inbox"),
                until=lambda page: reference in page.text,
                timeout=60,
                interval=0.5,
                what=f"concern {reference} in the DSL's inbox",
            )
            assert inbox.status_code == 200
            found = re.search(rf'href="/cases/([^"]+)"><strong>{re.escape(reference)}</strong>', inbox.text)
            assert found, "the inbox links the case"
            case_id = found.group(1)
            assert (await client.get(f"/cases/{case_id}")).status_code == 200
        # The open is in the school's ledger: published by the console as itself, appended by audit.
        audit_password = (data_dir / "credentials" / "database" / "safeguard_audit.password").read_text().strip()
        audit_url = role_url(endpoints["database"], role="safeguard_audit", password=audit_password)
        viewers = await eventually(
            lambda: _viewers(audit_url, case_id),
            timeout=30,
            what=f"the view of case {case_id} in audit.ledger",
        )
        assert viewers == ["s-bird"]
        assert running.process.poll() is None, "every service is still running"
    finally:
        exit_code = running.interrupt() if running.process.poll() is None else running.process.returncode
    assert exit_code == 0, running.log_tail()
