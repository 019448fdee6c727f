"""The trust overview as plain data: concerns per school and kind and per month, open cases, overdue
acknowledgements; bars and columns; CSV with the outstanding duties (`overview_duties`) as further sections.

Pure functions over the read model's case rows (already limited to the viewer's schools by row-level security).
Counts, references, person ids and dates only, never a case's content.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from services.console.overview_duties import DueItem, OutstandingAction, PolicyReview

CSV_COLUMNS = ("school_id", "kind", "concerns", "open_cases", "overdue_acknowledgements")
# The CSV's further sections, each after an empty line and its own header row.
MONTH_COLUMNS = ("month", "school_id", "kind", "concerns")
DUE_COLUMNS = ("school_id", "reference", "deadline", "due_at", "overdue", "reminded_at")
ACTION_COLUMNS = ("school_id", "reference", "debrief_action", "owner", "due_on", "overdue", "reminders_sent")
REVIEW_COLUMNS = ("school_id", "policy_version", "review_due", "overdue", "reminded_at")
MONTHS_SHOWN = 12
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


@dataclass(frozen=True)
class Column:
    """One column of a column chart, laid out: its label, value, height and place."""

    label: str
    title: str
    value: int
    height: float
    x: int


def month_of(row: Any) -> str:
    """The month a case was opened in (UTC), as YYYY-MM."""
    return (row.opened_at or row.updated_at).astimezone(UTC).strftime("%Y-%m")


def per_month(rows: Iterable[Any]) -> dict[tuple[str, str, str], int]:
    """Concerns per month, school and kind, in that order."""
    found: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (month_of(row), row.school_id, row.kind or "unclassified")
        found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items()))


def last_months(
    counts: Mapping[tuple[str, str, str], int], *, now: datetime, shown: int = MONTHS_SHOWN
) -> dict[str, int]:
    """Concerns in each of the last `shown` months up to `now`'s (every school and kind), oldest first."""
    year, month = now.year, now.month
    months: list[str] = []
    for _ in range(shown):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    totals_ = dict.fromkeys(reversed(months), 0)
    for (month_, _, _), count in counts.items():
        if month_ in totals_:
            totals_[month_] += count
    return totals_


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def columns(values: Mapping[str, int], *, tallest: float = 100.0, width: int = 34) -> list[Column]:
    """Columns for YYYY-MM keys scaled so the largest is `tallest` units high, `width` apart, in order."""
    peak = max(values.values(), default=0) or 1
    return [
        Column(
            label=MONTH_NAMES[int(key[5:7]) - 1],
            title=f"{MONTH_NAMES[int(key[5:7]) - 1]} {key[:4]}",
            value=value,
            height=round(tallest * value / peak, 1),
            x=index * width,
        )
        for index, (key, value) in enumerate(values.items())
    ]


def _cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _section(writer: Any, header: tuple[str, ...], rows: Iterable[Iterable[object]], *, first: bool = False) -> None:
    if not first:
        writer.writerow([])
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])


def overview_csv(
    figures: Iterable[Tally],
    *,
    months: Mapping[tuple[str, str, str], int] | None = None,
    due: Iterable[DueItem] = (),
    actions: Iterable[OutstandingAction] = (),
    reviews: Iterable[PolicyReview] = (),
) -> str:
    """The figures as CSV, safe to open in a spreadsheet: one row per school and kind, then (each after an empty
    line and its header) concerns per month, acknowledgements and deadlines, debrief actions, policy reviews."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    _section(writer, CSV_COLUMNS, ([getattr(t, c) for c in CSV_COLUMNS] for t in figures), first=True)
    _section(writer, MONTH_COLUMNS, ((*key, count) for key, count in (months or {}).items()))
    flag = {True: "yes", False: "no"}
    _section(
        writer,
        DUE_COLUMNS,
        ((d.school_id, d.reference, d.kind, d.due_at, flag[d.overdue], d.reminded_at) for d in due),
    )
    _section(
        writer,
        ACTION_COLUMNS,
        ((a.school_id, a.reference, a.action_id, a.owner, a.due_on, flag[a.overdue], a.reminders) for a in actions),
    )
    _section(
        writer,
        REVIEW_COLUMNS,
        ((r.school_id, r.version, r.review_due, flag[r.overdue], r.reminded_at) for r in reviews),
    )
    return out.getvalue()
