"""Verify the ledger in the database against the witness log: the edge around the pure verifier."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.bulk_verify import BulkTree, Disagrees, chunk_digests
from services.audit.heads import WitnessLog
from services.audit.parallel_verify import RANGE, verify_school_parallel
from services.audit.reading import (
    entry_chunks,
    last_sequence,
    rows_outside,
    schools_with_entries,
    stream_chain,
)
from services.audit.store import driver_connection, ledger
from services.audit.verify import LedgerVerifier, Report


async def verify_school(
    session: AsyncSession, *, school_id: str, witness: WitnessLog, public_key: Ed25519PublicKey, processes: int = 1
) -> Report:
    """One school's ledger, streamed from the database, checked against its signed heads (on `processes` cores)."""
    if processes > 1:
        last = await last_sequence(session, school_id=school_id)
        if last > RANGE:  # below one range, starting workers costs more than it saves
            url = session.get_bind().engine.url
            return await verify_school_parallel(
                session,
                dsn=url.set(drivername="postgresql").render_as_string(hide_password=False),
                table=ledger.fullname,
                school_id=school_id,
                last=last,
                witness=witness.raw_records(school_id=school_id),
                fallback_witness=witness.records(school_id=school_id),
                public_key=public_key,
                processes=processes,
            )
    report = await verify_in_bulk(session, school_id=school_id, witness=witness, public_key=public_key)
    if report is not None:
        return report
    # Something does not hold: the entry-by-entry verifier finds the first thing wrong and names it.
    verifier = LedgerVerifier(school_id=school_id, witness=witness.records(school_id=school_id), public_key=public_key)
    async for entry in stream_chain(session, school_id=school_id, decode=False):
        if not verifier.add(entry):
            break
    return verifier.finish()


async def verify_in_bulk(
    session: AsyncSession, *, school_id: str, witness: WitnessLog, public_key: Ed25519PublicKey
) -> Report | None:
    """The report when the whole ledger holds, checked a chunk at a time; None when anything does not."""
    connection = await driver_connection(session)
    last = await last_sequence(session, school_id=school_id)
    tree = BulkTree(school_id=school_id, witness=witness.raw_records(school_id=school_id), public_key=public_key)
    try:
        async for first, sequences, entries, stored in entry_chunks(connection, school_id=school_id, last=last):
            witnessed = tree.witnessed_through(first + len(entries) - 1)
            digests, hexes, before = chunk_digests(first, sequences, entries, stored, witnessed=witnessed)
            tree.add(first, digests, hexes, before=before)
        report = tree.finish()
    except Disagrees:
        return None
    # Rows the ranges did not reach (a sequence below 1, or none at all) would be a problem too.
    return None if await rows_outside(connection, school_id=school_id, last=last) else report


async def verify_ledger(
    session: AsyncSession,
    *,
    witness: WitnessLog,
    public_key: Ed25519PublicKey,
    school_id: str | None = None,
    processes: int = 1,
) -> list[Report]:
    """Every school's ledger (or one), including schools the witness knows that the database has lost."""
    if school_id is not None:
        schools = [school_id]
    else:
        schools = sorted(set(await schools_with_entries(session)) | set(witness.latest_heads()))
    return [
        await verify_school(session, school_id=school, witness=witness, public_key=public_key, processes=processes)
        for school in schools
    ]
