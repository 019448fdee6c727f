"""Export a school's record (all of it, a time window, or one case) as a bundle that proves itself.

The bundle is one JSON Lines file: a header with the public key, then the chosen entries in chain order, then
every signed head with a consistency proof from the head before, then an inclusion proof for the last entry of
each run of consecutive entries (the chain links inside a run carry the proof to the others). Only entries
covered by a signed head are exported. `python -m services.audit.verify_export` checks it without a database.

Entries go into the bundle exactly as stored: personal fields sealed, so the bundle verifies with no key, also
after crypto-shredding. A separate decrypted view (`write_decrypted_view`) opens them for a subject access
request; it is marked as not covered by the hashes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.heads import SignedHead, WitnessLog, public_key_pem
from services.audit.keyring import KeyRing
from services.audit.merkle import Range, SubtreeCollector, consistency_ranges, entry_leaf, inclusion_ranges
from services.audit.reading import stream_chain
from services.audit.verify_export import BUNDLE_FORMAT

Progress = Callable[[int], None]  # called with how many entries were read since the last call


@dataclass(frozen=True)
class Selection:
    """Which entries go into the bundle: all, those that occurred in [start, end), or one case's; never those of
    `leave_out` (case or correlation ids: the cases about the person exporting)."""

    start: datetime | None = None
    end: datetime | None = None
    case_id: str | None = None
    leave_out: frozenset[str] = frozenset()

    def wants(self, event: Mapping[str, Any]) -> bool:
        payload = event.get("payload") or {}
        ids = (event.get("aggregate_id"), str(event.get("correlation_id")), payload.get("case_id"))
        if self.case_id is not None and self.case_id not in ids:
            return False
        if self.leave_out and not self.leave_out.isdisjoint(ids):
            return False
        if self.start is not None or self.end is not None:
            occurred = datetime.fromisoformat(str(event["occurred_at"]))
            if (self.start and occurred < self.start) or (self.end and occurred >= self.end):
                return False
        return True

    def describe(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "case": self.case_id,
        }


@dataclass(frozen=True)
class ExportSummary:
    entries: int
    runs: int
    heads: int
    tree_size: int


def _line(out: IO[str], document: Mapping[str, Any]) -> None:
    out.write(json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")


async def _chosen_runs(
    session: AsyncSession, *, school_id: str, selection: Selection, through: int, progress: Progress
) -> list[tuple[int, int]]:
    """First pass: the chosen entries as runs of consecutive sequences (first, last)."""
    runs: list[tuple[int, int]] = []
    async for entry in stream_chain(session, school_id=school_id, through=through):
        progress(1)
        if selection.wants(entry.event):
            sequence = entry.school_sequence
            if runs and runs[-1][1] == sequence - 1:
                runs[-1] = (runs[-1][0], sequence)
            else:
                runs.append((sequence, sequence))
    return runs


async def export_bundle(
    session: AsyncSession,
    out: IO[str],
    *,
    school_id: str,
    selection: Selection,
    witness: WitnessLog,
    public_key: Ed25519PublicKey,
    created_at: datetime,
    progress: Progress = lambda _: None,
) -> ExportSummary:
    """Write the bundle for `school_id` to `out` in two passes over the ledger."""
    heads = [record.signed for record in witness.records(school_id=school_id)]
    if not heads:
        raise LookupError(f"no signed head for {school_id} yet: nothing can be proved")
    anchor = heads[-1].head.tree_size
    runs = await _chosen_runs(session, school_id=school_id, selection=selection, through=anchor, progress=progress)
    proofs: dict[int, list[Range]] = {last: inclusion_ranges(last - 1, anchor) for _, last in runs}
    links = [consistency_ranges(a.head.tree_size, b.head.tree_size) for a, b in itertools.pairwise(heads)]
    collector = SubtreeCollector([r for ranges in [*proofs.values(), *links] for r in ranges])
    _line(
        out,
        {
            "kind": "bundle",
            "format": BUNDLE_FORMAT,
            "school_id": school_id,
            "selection": selection.describe(),
            "created_at": created_at.isoformat(),
            "public_key": public_key_pem(public_key),
        },
    )
    run_index, written = 0, 0
    async for entry in stream_chain(session, school_id=school_id, through=anchor):
        progress(1)
        collector.add(entry_leaf(entry.entry_hash))
        sequence = entry.school_sequence
        while run_index < len(runs) and runs[run_index][1] < sequence:
            run_index += 1
        if run_index < len(runs) and runs[run_index][0] <= sequence:
            _line(
                out,
                {
                    "kind": "entry",
                    "school_sequence": sequence,
                    "previous_hash": entry.previous_hash,
                    "entry_hash": entry.entry_hash,
                    "event": dict(entry.event),
                },
            )
            written += 1
    roots = collector.roots()
    _write_heads(out, heads, links=links, roots=roots)
    for last, ranges in proofs.items():
        _line(out, {"kind": "inclusion", "school_sequence": last, "tree_size": anchor, "proof": _hex(ranges, roots)})
    return ExportSummary(entries=written, runs=len(runs), heads=len(heads), tree_size=anchor)


def _hex(ranges: list[Range], roots: Mapping[Range, bytes]) -> list[str]:
    return [roots[r].hex() for r in ranges]


def _write_heads(
    out: IO[str], heads: list[SignedHead], *, links: list[list[Range]], roots: Mapping[Range, bytes]
) -> None:
    for index, signed in enumerate(heads):
        document: dict[str, Any] = {"kind": "head", **signed.document()}
        if index:
            document["consistency"] = _hex(links[index - 1], roots)
        _line(out, document)


def default_bundle_path(school_id: str, *, selection: Selection, created_at: datetime) -> Path:
    """A file name that says what the bundle holds."""
    what = f"case-{selection.case_id}" if selection.case_id else "record"
    return Path(f"audit-{school_id}-{what}-{created_at:%Y%m%dT%H%M%SZ}.jsonl")


DECRYPTED_VIEW_FORMAT = "safeguard-audit-decrypted-view/1"
NOT_PROVED = (
    "A reading aid for a subject access request: these entries are opened with the school's keys and are NOT "
    "covered by the bundle's hashes, heads or proofs. The bundle (sealed fields as stored) is the proved record; "
    "each entry here names the school_sequence and event_id of the bundle entry it opens."
)


async def write_decrypted_view(
    session: AsyncSession,
    out: IO[str],
    *,
    keyring: KeyRing,
    school_id: str,
    selection: Selection,
    bundle: str,
    through: int,
) -> int:
    """Write the bundle's chosen entries with their sealed fields opened (erased when shredded); how many."""
    keys = await keyring.reader(session, school_id=school_id)
    _line(out, {"kind": "decrypted_view", "format": DECRYPTED_VIEW_FORMAT, "bundle": bundle, "not_proved": NOT_PROVED})
    written = 0
    async for entry in stream_chain(session, school_id=school_id, through=through):
        if selection.wants(entry.event):
            opened = keys.open(dict(entry.event))
            line = {"kind": "opened_entry", "school_sequence": entry.school_sequence, "event": opened.document}
            _line(out, {**line, "erased": opened.erased, "tampered": opened.tampered})
            written += 1
    return written
