"""The trust overview as plain data: concerns per school and kind, open cases, overdue acknowledgements; bars; CSV.

Pure functions over the read model's case rows (already limited to the viewer's schools by row-level security).
Counts only, never a case's content, so a role that may not read cases may still be shown them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

CSV_COLUMNS = ("school_id", "kind", "concerns", "open_cases", "overdue_acknowledgements")
# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Tally:
    """One school's figures for one kind of concern."""

    school_id: str
    kind: str
    concerns: int = 0
    open_cases: int = 0
    overdue_acknowledgements: int = 0


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart, laid out: its label, value, length and row."""

    label: str
    value: int
    length: float
    y: int


def tallies(rows: Iterable[Any], *, now: datetime) -> list[Tally]:
    """Figures per school and kind: every case counts; not closed is open; unacknowledged past its due is overdue."""
    found: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        counts = found.setdefault((row.school_id, row.kind or "unclassified"), [0, 0, 0])
        counts[0] += 1
        counts[1] += row.status != "closed"
        counts[2] += row.status == "open" and row.acknowledge_due is not None and row.acknowledge_due < now
    return [Tally(school, kind, *counts) for (school, kind), counts in sorted(found.items())]


def totals(figures: Iterable[Tally], *, by: Literal["school_id", "kind"]) -> dict[str, Tally]:
    """The figures summed per school or per kind, in name order."""
    summed: dict[str, list[int]] = {}
    for tally in figures:
        counts = summed.setdefault(getattr(tally, by), [0, 0, 0])
        counts[0] += tally.concerns
        counts[1] += tally.open_cases
        counts[2] += tally.overdue_acknowledgements
    return {
        key: Tally(key if by == "school_id" else "", key if by == "kind" else "", *counts)
        for key, counts in sorted(summed.items())
    }


def bars(values: Mapping[str, int], *, longest: float = 220.0, row_height: int = 24) -> list[Bar]:
    """Bars scaled so the largest value is `longest` units long, one row each, in the mapping's order."""
    peak = max(values.values(), default=0) or 1
    return [
        Bar(label=label, value=value, length=round(longest * value / peak, 1), y=index * row_height)
        for index, (label, value) in enumerate(values.items())
    ]


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def overview_csv(figures: Iterable[Tally]) -> str:
    """The figures as CSV, one row per school and kind, safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for tally in figures:
        writer.writerow([_cell(getattr(tally, column)) for column in CSV_COLUMNS])
    return out.getvalue()
