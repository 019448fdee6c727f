"""The trust overview's figures, bars and CSV as tables: what counts as open and overdue, and a safe spreadsheet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.console.access import Page, Principal, may_open
from services.console.overview import Tally, bars, overview_csv, tallies, totals

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(hours=1), NOW + timedelta(hours=1)


def case(school_id: str, kind: str, status: str, acknowledge_due: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(school_id=school_id, kind=kind, status=status, acknowledge_due=acknowledge_due)


ROWS = [
    case("st-marks", "online_bullying", "open", EARLIER),  # unacknowledged past its due: overdue
    case("st-marks", "online_bullying", "open", LATER),  # unacknowledged, still in time
    case("st-marks", "online_bullying", "acknowledged", EARLIER),  # acknowledged late: open, not overdue
    case("st-marks", "sexting", "closed", EARLIER),  # closed: neither
    case("oak-primary", "", "open", None),  # no deadline, no kind yet
]


def test_figures_per_school_and_kind() -> None:
    assert tallies(ROWS, now=NOW) == [
        Tally("oak-primary", "unclassified", concerns=1, open_cases=1, overdue_acknowledgements=0),
        Tally("st-marks", "online_bullying", concerns=3, open_cases=3, overdue_acknowledgements=1),
        Tally("st-marks", "sexting", concerns=1, open_cases=0, overdue_acknowledgements=0),
    ]


def test_totals_per_school_and_per_kind() -> None:
    figures = tallies(ROWS, now=NOW)
    assert totals(figures, by="school_id") == {
        "oak-primary": Tally("oak-primary", "", 1, 1, 0),
        "st-marks": Tally("st-marks", "", 4, 3, 1),
    }
    assert list(totals(figures, by="kind")) == ["online_bullying", "sexting", "unclassified"]


def test_bars_scale_to_the_largest_value_one_row_each() -> None:
    laid_out = bars({"st-marks": 4, "oak-primary": 1, "quiet-school": 0}, longest=200, row_height=20)
    assert [(bar.label, bar.length, bar.y) for bar in laid_out] == [
        ("st-marks", 200.0, 0),
        ("oak-primary", 50.0, 20),
        ("quiet-school", 0.0, 40),
    ]
    assert bars({}) == []


def test_the_csv_has_a_row_per_school_and_kind_and_no_cell_a_spreadsheet_would_run() -> None:
    text = overview_csv([*tallies(ROWS, now=NOW), Tally("=cmd|'/c calc'!A1", "@sum", 1, 0, 0)])
    lines = text.split("\n\n")[0].splitlines()  # the first section; the others follow after an empty line
    assert lines[0] == "school_id,kind,concerns,open_cases,overdue_acknowledgements"
    assert lines[2] == "st-marks,online_bullying,3,3,1"
    assert lines[-1].startswith("'=cmd") and ",'@sum," in lines[-1]


@pytest.mark.parametrize(
    ("role", "sees_overview"),
    [
        ("designated_safeguarding_lead", True),
        ("deputy_designated_safeguarding_lead", True),
        ("headteacher", True),
        ("trust_safeguarding_lead", True),
        ("auditor", True),
        ("named_governor", False),
        ("staff", False),
        ("trust_administrator", False),
    ],
)
def test_who_opens_the_overview(role: str, sees_overview: bool) -> None:
    principal = Principal("a", "u", "p", role, "st-marks", frozenset({"st-marks"}))
    assert may_open(principal, Page.overview) is sees_overview
