"""The audit bench at a small N, so it cannot rot: it runs the real paths and prints every figure, as JSON too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.audit.bulk_verify import BulkTree, Disagrees, chunk_digests
from services.audit.domain import split_entry
from services.bench.audit_synthetic import COLUMNS, SyntheticLedger
from shared.contracts.envelope import parse_event
from shared.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARGUMENTS = ["--events", "3000", "--processes", "2", "--repeat", "1", "--json"]
HASH = COLUMNS.index("entry_hash")


def test_the_synthetic_ledger_is_real_case_events_chained_and_checkpointed() -> None:
    ledger = SyntheticLedger()
    rows, entries = ledger.chunk(2_500)
    ledger.finish()
    assert {parse_event(split_entry(e)[2]).type for e in entries} == {
        "case.opened",
        "case.acknowledged",
        "case.action_recorded",
    }
    tree = BulkTree(
        school_id="bench-school",
        witness=[
            (r.signed, [[w.school_sequence, w.event_id, w.entry_hash] for w in r.entries]) for r in ledger.records
        ],
        public_key=ledger.key.public_key(),
    )
    digests, hexes, before = chunk_digests(1, [r[1] for r in rows], entries, [r[HASH] for r in rows])
    assert len(digests) == 2_500 and before == "0" * 64
    tree.add(1, digests, hexes, before=before)
    report = tree.finish()
    assert report.ok and report.anchored == 2_500 and report.heads == 3


def test_a_chunk_with_an_edited_entry_disagrees() -> None:
    rows, entries = SyntheticLedger().chunk(20)
    edited = [e.replace(b"pastoral_support", b"early_help") for e in entries]
    with pytest.raises(Disagrees):
        chunk_digests(1, [r[1] for r in rows], edited, [r[HASH] for r in rows])


def test_the_bench_runs_end_to_end_at_a_small_n(settings: Settings) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SAFEGUARD_DATABASE_URL": settings.database_url,
        "SAFEGUARD_NATS_URL": settings.nats_url,
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_audit.py"), *ARGUMENTS],
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
        "postgresql_read_alone",
        "verify_hashing_in_memory",
        "replay_parse_and_fold_in_memory",
    }
    assert len(result["rounds"]) == 1 and result["sample"] == 3000
    assert all(rate > 0 for rate in result["rates_per_second"].values())
    assert 0 < result["ratios"]["verify_1_process_vs_sha256"] < 10
