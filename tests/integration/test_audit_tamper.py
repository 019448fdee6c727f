"""An insider with PostgreSQL's superuser rewrites the ledger; verify catches it and names the entry.

The triggers refuse UPDATE/DELETE/TRUNCATE, but `SET LOCAL session_replication_role = replica` switches them
off for a superuser, and hashes can be recomputed so the chain looks whole. What the insider cannot reach is the
signing key and the witness log, both files outside the database: checkpoints were signed every 4 entries
while the ledger grew normally, then each scenario rewrites it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.checks import verify_ledger
from services.audit.domain import ChainEntry
from services.audit.heads import WitnessRecord, sign_head
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_ledger import SCHOOL, Ledger, audit_ledger_in
from tests.support.ledgers import chain_of, synthetic_event

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_ledger(settings: Settings, tmp_path: Path) -> AsyncIterator[Ledger]:
    async with audit_ledger_in(settings, tmp_path) as ledger:
        yield ledger


def events_of(rows: list[ChainEntry]) -> list[dict[str, object]]:
    return [dict(row.event) for row in rows]


async def test_the_untouched_ledger_verifies_and_every_head_is_anchored(audit_ledger: Ledger) -> None:
    report = await audit_ledger.verify()
    assert report.ok, report.problem
    assert (report.entries, report.heads, report.anchored) == (20, 5, 20)


async def test_replication_role_bypass_edit_with_recomputed_hashes_is_caught(audit_ledger: Ledger) -> None:
    """Exactly the attack in the issue: edit an entry, recompute every hash after it, keep appending."""
    rows = await audit_ledger.rows()
    edited = events_of(rows)
    edited[6] = {**edited[6], "payload": {"note": "nothing happened"}}
    recomputed = list(chain_of(edited))

    async def edit(connection: asyncpg.Connection) -> None:
        for entry in recomputed[6:]:
            await connection.execute(
                "update audit.ledger set previous_hash = $1, entry_hash = $2, entry = $3 "
                "where school_id = $4 and school_sequence = $5",
                entry.previous_hash,
                entry.entry_hash,
                entry.hashed(),
                SCHOOL,
                entry.school_sequence,
            )

    await audit_ledger.as_superuser(edit)
    # The chain alone is whole again, and new entries chain on normally...
    more = list(chain_of([synthetic_event(21, school_id=SCHOOL)], first=21, previous=recomputed[-1].entry_hash))
    await audit_ledger.append(more)
    await audit_ledger.checkpoint()
    # ...but checkpointing refuses to sign over it, and verify names the entry.
    assert SCHOOL in audit_ledger.checkpointer.broken
    report = await audit_ledger.verify()
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == ("edited", 7), str(report.problem)


@pytest.mark.parametrize(
    ("attack", "kind", "sequence"),
    [
        ("delete", "missing", 7),
        ("delete and renumber", "missing", 7),
        ("swap", "reordered", 7),
        ("truncate the tail", "truncated", 14),
        ("insert", "inserted", 7),
    ],
)
async def test_each_rewrite_is_caught_and_named(audit_ledger: Ledger, attack: str, kind: str, sequence: int) -> None:
    events = events_of(await audit_ledger.rows())
    if attack == "delete":
        await audit_ledger.as_superuser(
            lambda c: c.execute("delete from audit.ledger where school_id = $1 and school_sequence = 7", SCHOOL)
        )
    elif attack == "delete and renumber":
        await audit_ledger.rewrite([*events[:6], *events[7:]])
    elif attack == "swap":
        await audit_ledger.rewrite([*events[:6], events[7], events[6], *events[8:]])
    elif attack == "truncate the tail":
        await audit_ledger.as_superuser(
            lambda c: c.execute("delete from audit.ledger where school_id = $1 and school_sequence > 13", SCHOOL)
        )
    else:
        await audit_ledger.rewrite([*events[:6], synthetic_event(999, school_id=SCHOOL), *events[6:]])
    report = await audit_ledger.verify()
    assert report.problem is not None
    assert (report.problem.kind, report.problem.school_sequence) == (kind, sequence), str(report.problem)


async def test_a_head_signed_with_another_key_is_caught(audit_ledger: Ledger) -> None:
    records = list(audit_ledger.witness.records())
    impostor = Ed25519PrivateKey.generate()
    records[2] = WitnessRecord(signed=sign_head(records[2].signed.head, key=impostor), entries=records[2].entries)
    audit_ledger.witness.path.write_text("".join(record.to_line() for record in records))
    report = await audit_ledger.verify()
    assert report.problem is not None and report.problem.kind == "forged head", str(report.problem)
    assert "12 entries" in report.problem.detail


async def test_verify_covers_every_school_the_witness_knows(audit_ledger: Ledger) -> None:
    async with transaction(audit_ledger.sessions) as session:
        reports = await verify_ledger(session, witness=audit_ledger.witness, public_key=audit_ledger.key.public_key())
    assert [(r.school_id, r.ok) for r in reports] == [(SCHOOL, True)]
