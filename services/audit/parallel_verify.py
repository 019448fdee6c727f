"""Verify a school's ledger on several cores: entry hashes recomputed in worker processes, the rest joined here.

Recomputing an entry's hash (decode the stored event, canonical bytes, SHA-256) is independent per entry and is
most of the work, so workers each take a range of sequences, read it with their own connection and return the
digests, having checked within the range that each matches its stored hash and links to the one before. This
process joins the ranges (each range's first entry must link to the previous range's last), grows the Merkle
tree, compares with the witness log and checks every signed head (`LedgerVerifier.add_digest`). Anything that
disagrees sends the school through the one-process verifier, which names the first bad entry as always.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import GENESIS, canonical_entry_digest, canonical_json
from services.audit.heads import WitnessRecord
from services.audit.reading import stream_chain
from services.audit.verify import LedgerVerifier, Report

RANGE = 50_000  # entries a worker reads and hashes at a time
Digests = tuple[int, bytes, str, bool]  # first sequence, 32-byte digests, first entry's previous hash, all held


def _range_query(table: str) -> str:
    return (
        f"select school_sequence, event::text, previous_hash, entry_hash from {table} "
        "where school_id = $1 and school_sequence between $2 and $3 order by school_sequence"
    )


def hash_rows(rows: Iterable[tuple[int, str, str, str]], *, first: int) -> Digests:
    """The digests of consecutive rows from `first`, stopping at the first gap, edit or broken link."""
    digests: list[bytes] = []
    expected, link, first_previous = first, None, None
    loads, digest_of = json.loads, canonical_entry_digest
    for sequence, text, previous, stored in rows:
        if first_previous is None:
            first_previous = previous
        if sequence != expected or (link is not None and previous != link):
            return first, b"".join(digests), first_previous, False
        digest = digest_of(previous, sequence, canonical_json(loads(text)))
        link = digest.hex()
        if link != stored:
            return first, b"".join(digests), first_previous, False
        digests.append(digest)
        expected += 1
    return first, b"".join(digests), first_previous or GENESIS, True


async def _read_and_hash(dsn: str, table: str, school_id: str, first: int, last: int) -> Digests:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(_range_query(table), school_id, first, last)
    finally:
        await connection.close()
    first_, blob, previous, held = hash_rows(rows, first=first)
    return first_, blob, previous, held and len(blob) == 32 * (last - first + 1)


def digest_range(dsn: str, table: str, school_id: str, first: int, last: int) -> Digests:
    """In a worker: read entries `first..last` and recompute their hashes."""
    return asyncio.run(_read_and_hash(dsn, table, school_id, first, last))


async def _join(verifier: LedgerVerifier, futures: list[Future[Digests]]) -> bool:
    for future in futures:
        first, blob, first_previous, held = await asyncio.wrap_future(future)
        if not held or first_previous != verifier.tip:
            return False
        add = verifier.add_digest
        for offset in range(0, len(blob), 32):
            if not add(first + offset // 32, blob[offset : offset + 32]):
                return False
    return True


async def verify_school_parallel(
    session: AsyncSession,
    *,
    dsn: str,
    table: str,
    school_id: str,
    last: int,
    witness: Iterable[WitnessRecord],
    fallback_witness: Iterable[WitnessRecord],
    public_key: Ed25519PublicKey,
    processes: int,
) -> Report:
    """The school's ledger (sequences 1..`last`) verified by `processes` workers; the same Report as `add`'s."""
    verifier = LedgerVerifier(school_id=school_id, witness=witness, public_key=public_key)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [
            pool.submit(digest_range, dsn, table, school_id, first, min(first + RANGE - 1, last))
            for first in range(1, last + 1, RANGE)
        ]
        try:
            joined = await _join(verifier, futures)
        finally:
            for future in futures:
                future.cancel()
    if joined:
        return verifier.finish()
    slow = LedgerVerifier(school_id=school_id, witness=fallback_witness, public_key=public_key)
    async for entry in stream_chain(session, school_id=school_id):
        if not slow.add(entry):
            break
    return slow.finish()
