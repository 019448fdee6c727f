"""`safeguard up` keeps the system up: each service SIGKILLed in turn during a burst of 50 reports comes back,
every report gets a reference (retried with its Idempotency-Key), and every concern has exactly one case."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.launcher.ports import free_port
from shared.db import asyncpg_dsn
from shared.db_roles import role_url
from tests.e2e.test_up import RunningUp, _child_running
from tests.faults.test_crash_recovery import tally
from tests.support.factories import report_json
from tests.support.reporting import post_until_accepted
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
BURST = 50
# After which report each service is killed (SIGKILL: no clean shutdown).
KILLS = {5: "intake", 15: "routing", 25: "notifications", 35: "audit"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="safeguard-fault-up-"))
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


async def test_each_service_killed_in_turn_comes_back_and_nothing_is_lost_or_doubled(
    data_dir: Path, tmp_path: Path
) -> None:
    running = RunningUp(
        data_dir=data_dir, http_port=free_port(), notifications_port=free_port(), log_file=tmp_path / "up.log"
    )
    try:
        endpoints = running.endpoints()
        url = endpoints["intake API"].replace("{school_id}", "st-marks")
        references: list[str] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for number in range(BURST):
                if number in KILLS:
                    victim = _child_running(running.process.pid, f"services.{KILLS[number]}")
                    assert victim is not None, KILLS[number]
                    os.kill(victim, signal.SIGKILL)
                key = f"burst-{number}-{time.monotonic_ns()}"
                report = report_json(summary=f"Burst {number}")
                answer = await post_until_accepted(client, url, report=report, idempotency_key=key)
                references.append(str(answer.json()["reference"]))
        assert len(set(references)) == BURST
        password = (data_dir / "credentials" / "database" / "safeguard_audit.password").read_text().strip()
        dsn = asyncpg_dsn(role_url(endpoints["database"], role="safeguard_audit", password=password))

        async def cases_opened() -> dict[str, int]:
            connection = await asyncpg.connect(dsn)
            try:
                rows = await connection.fetch("select event_type, event from audit.ledger_events order by position")
            finally:
                await connection.close()
            return dict(tally(rows).get("case.opened", {}))

        opened = await eventually(
            cases_opened, until=lambda found: set(found) >= set(references), timeout=180, what="a case per concern"
        )
        assert {reference: opened[reference] for reference in references} == dict.fromkeys(references, 1)
        assert running.process.poll() is None, "the system stayed up"
        log = running.log_file.read_text(errors="replace")
        for name in KILLS.values():
            assert f"service {name} restarted" in log, name
    finally:
        exit_code = running.interrupt() if running.process.poll() is None else running.process.returncode
    assert exit_code == 0, running.log_tail()
