"""An export proves itself to an outside auditor who has only the bundle and the audit public key."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit.export import Selection, export_bundle
from services.audit.heads import public_key_pem
from services.audit.verify_export import verify_bundle
from shared.db import transaction
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.audit_ledger import SCHOOL, Ledger, audit_ledger_in

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def audit_ledger(settings: Settings, tmp_path: Path) -> AsyncIterator[Ledger]:
    async with audit_ledger_in(settings, tmp_path, entries=22) as ledger:
        yield ledger


async def export(ledger: Ledger, selection: Selection) -> list[str]:
    out = io.StringIO()
    async with transaction(ledger.sessions) as session:
        await export_bundle(
            session,
            out,
            school_id=SCHOOL,
            selection=selection,
            witness=ledger.witness,
            public_key=ledger.key.public_key(),
            created_at=NOW,
        )
    return out.getvalue().splitlines(keepends=True)


async def test_a_whole_record_export_verifies_with_the_public_key_alone(audit_ledger: Ledger, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_text("".join(await export(audit_ledger, Selection())))
    key = tmp_path / "audit-public.pem"
    key.write_text(public_key_pem(audit_ledger.key.public_key()))
    # As the auditor runs it: a separate process, no database settings.
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "services.audit.verify_export", str(bundle), "--public-key", str(key)],
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    # Entries 21 and 22 came after the last head (every 4th entry), so only 20 can be proved.
    assert "OK st-tamper: 20 entries proved in a tree of 20, 5 signed heads consistent" in output


async def test_a_case_export_holds_that_case_and_proves_each_run(audit_ledger: Ledger) -> None:
    lines = await export(audit_ledger, Selection(case_id="case-1"))
    entries = [json.loads(line) for line in lines if '"kind":"entry"' in line]
    assert [e["school_sequence"] for e in entries] == list(range(10, 20))
    report = verify_bundle(lines, public_key=audit_ledger.key.public_key())
    assert report.ok, report.problem
    assert report.entries == 10


async def test_an_edited_export_is_refused_naming_the_entry(audit_ledger: Ledger) -> None:
    lines = await export(audit_ledger, Selection(case_id="case-1"))
    forged = [line.replace('"step":12', '"step":13') for line in lines]
    report = verify_bundle(forged, public_key=audit_ledger.key.public_key())
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == ("edited", 12)


async def test_an_export_with_an_entry_dropped_and_rechained_is_refused(audit_ledger: Ledger) -> None:
    lines = await export(audit_ledger, Selection(case_id="case-1"))
    without = [line for line in lines if json.loads(line).get("school_sequence") != 15 or '"inclusion"' in line]
    report = verify_bundle(without, public_key=audit_ledger.key.public_key())
    # Entries 10..14 no longer lead up to a proved entry, so nothing vouches for them.
    assert report.problem is not None, "a bundle with an entry taken out verified"
    assert (report.problem.kind, report.problem.school_sequence) == ("unproved", 14), str(report.problem)


def test_the_standalone_verifier_needs_no_database_or_service_code() -> None:
    probe = (
        "import sys, services.audit.verify_export; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'asyncpg', 'pydantic', 'faststream'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
