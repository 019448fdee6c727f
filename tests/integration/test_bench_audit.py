"""The audit bench at a small N, so it cannot rot: it runs the real paths and prints every figure, as JSON too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.audit.parallel_verify import hash_rows
from services.audit.verify import LedgerVerifier
from services.bench.audit_synthetic import SyntheticLedger
from shared.contracts.envelope import parse_event
from shared.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_the_synthetic_ledger_is_real_case_events_chained_and_checkpointed() -> None:
    ledger = SyntheticLedger()
    rows, canonicals = ledger.chunk(2_500)
    ledger.finish()
    assert {parse_event(c).type for c in canonicals} == {"case.opened", "case.acknowledged", "case.action_recorded"}
    verifier = LedgerVerifier(
        school_id="bench-school", witness=iter(ledger.records), public_key=ledger.key.public_key()
    )
    first, blob, first_previous, held = hash_rows(((r[1], r[7], r[8], r[9]) for r in rows), first=1)
    assert held and len(blob) == 32 * 2_500 and first_previous == "0" * 64
    assert all(verifier.add_digest(first + i, blob[32 * i : 32 * i + 32]) for i in range(2_500))
    report = verifier.finish()
    assert report.ok and report.anchored == 2_500 and report.heads == 3


def test_a_range_with_an_edited_entry_is_not_held() -> None:
    rows, _ = SyntheticLedger().chunk(20)
    edited = [(r[1], r[7].replace("pastoral_support", "early_help"), r[8], r[9]) for r in rows]
    assert not hash_rows(edited, first=1)[3]


def test_the_bench_runs_end_to_end_at_a_small_n(settings: Settings) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SAFEGUARD_DATABASE_URL": settings.database_url,
        "SAFEGUARD_NATS_URL": settings.nats_url,
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_audit.py"), "--events", "3000", "--processes", "2", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["events"] == 3000 and result["heads"] == 3 and result["processes"] == 2
    assert set(result["rates_per_second"]) == {
        "raw_sha256",
        "raw_jetstream_ordered_read",
        "replay",
        "verify_1_process",
        "verify_n_processes",
    }
    assert all(rate > 0 for rate in result["rates_per_second"].values())
    assert 0 < result["ratios"]["verify_1_process_vs_sha256"] < 10
