"""Verify the ledger in the database against the witness log: the edge around the pure verifier."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.heads import WitnessLog
from services.audit.parallel_verify import RANGE, verify_school_parallel
from services.audit.reading import schools_with_entries, stream_chain
from services.audit.store import ledger
from services.audit.verify import LedgerVerifier, Report


async def verify_school(
    session: AsyncSession, *, school_id: str, witness: WitnessLog, public_key: Ed25519PublicKey, processes: int = 1
) -> Report:
    """One school's ledger, streamed from the database, checked against its signed heads (on `processes` cores)."""
    if processes > 1:
        last = (await schools_with_entries(session)).get(school_id, 0)
        if last > RANGE:  # below one range, starting workers costs more than it saves
            url = session.get_bind().engine.url
            return await verify_school_parallel(
                session,
                dsn=url.set(drivername="postgresql").render_as_string(hide_password=False),
                table=ledger.fullname,
                school_id=school_id,
                last=last,
                witness=witness.records(school_id=school_id),
                fallback_witness=witness.records(school_id=school_id),
                public_key=public_key,
                processes=processes,
            )
    verifier = LedgerVerifier(school_id=school_id, witness=witness.records(school_id=school_id), public_key=public_key)
    async for entry in stream_chain(session, school_id=school_id):
        if not verifier.add(entry):
            break
    return verifier.finish()


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
