"""Verify a school's ledger on several cores: entry hashes recomputed in worker processes, the rest joined here.

Recomputing the entry hashes (SHA-256 of each stored entry's bytes), checking them against the stored hashes and
each other, and hashing the tree's leaves is independent per range, so workers each take a range of sequences,
read it with their own connection and return the digests and leaf hashes (`bulk_verify.chunk_digests`). This
process joins the ranges in order (each range's first entry must name the previous range's last hash), compares
with the witness log, grows the Merkle tree and checks every signed head (`bulk_verify.BulkTree`). Anything that
disagrees sends the school through the one-process verifier, which names the first bad entry as always.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.bulk_verify import BulkTree, Disagrees, RawRecord, chunk_digests, split32
from services.audit.heads import WitnessRecord
from services.audit.merkle import leaf_hashes
from services.audit.reading import ENTRY_CHUNK, as_chunk, chunk_query, rows_outside, stream_chain
from services.audit.store import driver_connection
from services.audit.verify import LedgerVerifier, Report

RANGE = 2 * ENTRY_CHUNK  # entries a worker reads and hashes at a time
# first sequence, 32-byte digests joined, their leaf hashes joined, the hash the first entry names before it
Digests = tuple[int, bytes, bytes, str]


async def _read_and_hash(dsn: str, table: str, school_id: str, first: int, last: int) -> Digests | None:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(chunk_query(table), school_id, first, last)
    finally:
        await connection.close()
    try:
        digests, _, before = chunk_digests(*as_chunk(first, rows))
    except Disagrees:
        return None
    if len(digests) != last - first + 1:
        return None
    return first, b"".join(digests), b"".join(leaf_hashes(digests)), before


def digest_range(dsn: str, table: str, school_id: str, first: int, last: int) -> Digests | None:
    """In a worker: read entries `first..last` and recompute their hashes; None when anything in it disagrees."""
    return asyncio.run(_read_and_hash(dsn, table, school_id, first, last))


async def _join(tree: BulkTree, futures: list[Future[Digests | None]]) -> None:
    for future in futures:
        done = await asyncio.wrap_future(future)
        if done is None:
            raise Disagrees
        first, joined, leaves, before = done
        digests = split32(joined)
        tree.add(first, digests, list(map(bytes.hex, digests)), before=before, leaves=split32(leaves))


async def verify_school_parallel(
    session: AsyncSession,
    *,
    dsn: str,
    table: str,
    school_id: str,
    last: int,
    witness: Iterable[RawRecord],
    fallback_witness: Iterable[WitnessRecord],
    public_key: Ed25519PublicKey,
    processes: int,
) -> Report:
    """The school's ledger (sequences 1..`last`) verified by `processes` workers; the same Report as `add`'s."""
    tree = BulkTree(school_id=school_id, witness=witness, public_key=public_key)
    context = multiprocessing.get_context("fork")
    report: Report | None = None
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [
            pool.submit(digest_range, dsn, table, school_id, first, min(first + RANGE - 1, last))
            for first in range(1, last + 1, RANGE)
        ]
        try:
            await _join(tree, futures)
            report = tree.finish()
        except Disagrees:
            report = None
        finally:
            for future in futures:
                future.cancel()
    connection = await driver_connection(session)
    if report is not None and not await rows_outside(connection, school_id=school_id, last=last, table=table):
        return report
    slow = LedgerVerifier(school_id=school_id, witness=fallback_witness, public_key=public_key)
    async for entry in stream_chain(session, school_id=school_id, decode=False):
        if not slow.add(entry):
            break
    return slow.finish()
