"""The checkpointer grows its tree from ledger rows as read (`extend_stored`) exactly as from chain entries
(`extend`): the same root, tip and witnessed entries for an intact chain, and the same refusal for a broken one,
whichever part of a row was changed."""

from __future__ import annotations

import hashlib

import pytest

from services.audit.checkpoint import LedgerBroken, SchoolTree
from services.audit.domain import ChainEntry, entry_bytes, stored_entry
from tests.support.ledgers import synthetic_chain

Row = tuple[int, bytes, str]


def rows_of(entries: list[ChainEntry]) -> list[Row]:
    """The ledger's (school_sequence, entry, entry_hash) of each entry."""
    return [(e.school_sequence, e.hashed(), e.entry_hash) for e in entries]


def grown(rows: list[Row], *, stored: bool) -> SchoolTree | str:
    """The tree after every row, or why it refused one."""
    tree = SchoolTree("st-marks")
    try:
        for sequence, entry, digest in rows:
            if stored:
                tree.extend_stored(sequence, entry, digest)
            else:
                tree.extend(stored_entry(sequence, entry, digest, decode=False))
    except LedgerBroken as broken:
        return str(broken)
    return tree


def test_an_intact_chain_gives_the_same_tree_and_witnessed_entries() -> None:
    rows = rows_of(list(synthetic_chain(40)))
    by_entries, by_rows = grown(rows, stored=False), grown(rows, stored=True)
    assert isinstance(by_entries, SchoolTree) and isinstance(by_rows, SchoolTree)
    assert by_rows.tree.root() == by_entries.tree.root()
    assert (by_rows.tip, by_rows.added) == (by_entries.tip, by_entries.added)
    assert by_rows.added[4].event_id == "00000000-0000-0000-0000-000000000005"


def _rehashed_prefix(rows: list[Row]) -> list[Row]:
    # The entry's stored prefix names another previous hash, yet its hash is what extend recomputes from the tip
    # and the event's bytes: extend has always accepted such a row, so extend_stored must too.
    sequence, entry, digest = rows[5]
    canonical = entry.split(b"\n", 2)[2]
    return [*rows[:5], (sequence, entry_bytes("f" * 64, sequence, canonical), digest), *rows[6:]]


def _changed(index: int, *, entry: bytes | None = None, digest: str | None = None, sequence: int | None = None):  # type: ignore[no-untyped-def]
    def change(rows: list[Row]) -> list[Row]:
        old = rows[index]
        row = (old[0] if sequence is None else sequence, old[1] if entry is None else entry, digest or old[2])
        return [*rows[:index], row, *rows[index + 1 :]]

    return change


@pytest.mark.parametrize(
    "alter",
    [
        _rehashed_prefix,
        _changed(3, entry=b"not an entry at all"),
        _changed(3, digest=hashlib.sha256(b"other").hexdigest()),
        _changed(3, sequence=9),
        lambda rows: [row for row in rows if row[0] != 7],  # a gap
        lambda rows: [(s, e.replace(b"Synthetic", b"Changed!!", 1), h) for s, e, h in rows],
    ],
)
def test_a_changed_row_is_decided_as_extend_decides_it(alter) -> None:  # type: ignore[no-untyped-def]
    rows = alter(rows_of(list(synthetic_chain(12))))
    by_entries, by_rows = grown(rows, stored=False), grown(rows, stored=True)
    if isinstance(by_entries, str):
        assert by_rows == by_entries
    else:
        assert isinstance(by_rows, SchoolTree)
        assert (by_rows.tree.root(), by_rows.tip, by_rows.added) == (
            by_entries.tree.root(),
            by_entries.tip,
            by_entries.added,
        )
