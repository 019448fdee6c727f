"""What the overview lists as outstanding, per month and in its CSV: which deadlines, actions and reviews count."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from services.console.overview import columns, last_months, overview_csv, per_month
from services.console.overview_duties import (
    DueItem,
    OutstandingAction,
    PolicyReview,
    due_items,
    latest_versions,
    outstanding_actions,
    overdue_per_school,
    policy_reviews,
    school_today,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
TODAY = {"st-marks": date(2026, 3, 2), "oak-primary": date(2026, 3, 2)}


def case(case_id: str, status: str, *, due: datetime | None = None, school: str = "st-marks") -> SimpleNamespace:
    return SimpleNamespace(
        case_id=case_id,
        school_id=school,
        reference=f"REF-{case_id}",
        status=status,
        acknowledge_due=due,
        kind="online_bullying",
        opened_at=NOW,
        updated_at=NOW,
    )


def deadline(case_id: str, due_at: datetime, *, reached_at: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(case_id=case_id, kind="consider_lado_referral", due_at=due_at, reached_at=reached_at)


def action(case_id: str, action_id: str, due_on: date, *, school: str = "st-marks") -> SimpleNamespace:
    return SimpleNamespace(
        case_id=case_id, school_id=school, action_id=action_id, owner="s-bird", due_on=due_on, reminders=2
    )


def test_acknowledgements_wait_while_unacknowledged_and_policy_deadlines_while_the_case_is_open() -> None:
    cases = [case("a", "open", due=EARLIER), case("b", "in_progress", due=EARLIER), case("c", "closed")]
    found = due_items(
        cases,
        [deadline("b", EARLIER, reached_at=EARLIER), deadline("a", LATER), deadline("c", EARLIER), deadline("x", NOW)],
        now=NOW,
    )
    assert [(d.reference, d.kind, d.overdue, d.reminded_at) for d in found] == [
        ("REF-a", "acknowledge", True, None),
        ("REF-b", "consider_lado_referral", True, EARLIER),
        ("REF-a", "consider_lado_referral", False, None),
    ]


def test_open_debrief_actions_of_the_cases_shown_overdue_from_the_day_after_they_are_due() -> None:
    found = outstanding_actions(
        [case("a", "closed")],
        [
            action("a", "one", date(2026, 3, 2)),
            action("a", "two", date(2026, 3, 1)),
            action("hidden", "three", date(2026, 1, 1)),  # a case the viewer is not shown
        ],
        today=TODAY,
    )
    assert [(a.action_id, a.overdue, a.reminders) for a in found] == [("two", True, 2), ("one", False, 2)]


def test_the_policy_in_force_is_the_latest_version_and_its_review_is_overdue_once_past() -> None:
    rows = [
        SimpleNamespace(school_id="st-marks", version=1, review_due=date(2022, 10, 31), review_reminded_at=None),
        SimpleNamespace(school_id="st-marks", version=2, review_due=date(2026, 3, 1), review_reminded_at=EARLIER),
        SimpleNamespace(school_id="oak-primary", version=4, review_due=None, review_reminded_at=None),
    ]
    assert [r.version for r in latest_versions(rows).values()] == [4, 2]
    assert policy_reviews(latest_versions(rows), today=TODAY) == [
        PolicyReview("oak-primary", 4, None, False, None),
        PolicyReview("st-marks", 2, date(2026, 3, 1), True, EARLIER),
    ]


def test_everything_overdue_is_counted_per_school_and_a_quiet_school_shows_zero() -> None:
    due = [DueItem("st-marks", "r", "acknowledge", EARLIER, True), DueItem("st-marks", "r", "x", LATER, False)]
    actions = [OutstandingAction("st-marks", "r", "one", "s-bird", date(2026, 1, 1), True, 0)]
    reviews = [PolicyReview("st-marks", 1, date(2022, 10, 31), True, None)]
    assert overdue_per_school({"oak-primary", "st-marks"}, due=due, actions=actions, reviews=reviews) == {
        "oak-primary": 0,
        "st-marks": 3,
    }


def test_today_is_the_schools_own_date() -> None:
    late_evening = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert school_today("Europe/London", now=late_evening) == date(2026, 3, 2)
    assert school_today("Asia/Tokyo", now=late_evening) == date(2026, 3, 3)
    assert school_today(None, now=late_evening) == school_today("Not/A_Zone", now=late_evening) == date(2026, 3, 2)


def test_concerns_per_month_over_the_last_twelve_with_empty_months_shown() -> None:
    old = SimpleNamespace(school_id="st-marks", kind="", opened_at=datetime(2025, 3, 31, tzinfo=UTC), updated_at=NOW)
    counts = per_month([case("a", "open"), case("b", "open", school="oak-primary"), old])
    assert counts == {
        ("2025-03", "st-marks", "unclassified"): 1,
        ("2026-03", "oak-primary", "online_bullying"): 1,
        ("2026-03", "st-marks", "online_bullying"): 1,
    }
    months = last_months(counts, now=NOW)
    keys = list(months)
    assert (keys[0], keys[-1], len(keys)) == ("2025-04", "2026-03", 12)
    assert months["2026-03"] == 2 and sum(months.values()) == 2  # March 2025 is more than a year ago
    laid_out = columns({"2026-02": 1, "2026-03": 4}, tallest=100, width=30)
    assert [(c.label, c.title, c.height, c.x) for c in laid_out] == [
        ("Feb", "Feb 2026", 25.0, 0),
        ("Mar", "Mar 2026", 100.0, 30),
    ]


def test_the_csv_has_a_section_for_each_list_and_no_case_content() -> None:
    text = overview_csv(
        [],
        months={("2026-03", "st-marks", "online_bullying"): 2},
        due=[DueItem("st-marks", "REF-a", "consider_lado_referral", EARLIER, True, reminded_at=EARLIER)],
        actions=[OutstandingAction("st-marks", "REF-a", "one", "s-bird", date(2026, 3, 1), True, 2)],
        reviews=[PolicyReview("st-marks", 1, date(2022, 10, 31), True, None)],
    )
    sections = [list(csv.reader(io.StringIO(part))) for part in text.split("\n\n")]
    assert [rows[0][:2] for rows in sections] == [
        ["school_id", "kind"],
        ["month", "school_id"],
        ["school_id", "reference"],
        ["school_id", "reference"],
        ["school_id", "policy_version"],
    ]
    assert sections[1][1] == ["2026-03", "st-marks", "online_bullying", "2"]
    assert sections[2][1] == [
        "st-marks",
        "REF-a",
        "consider_lado_referral",
        EARLIER.isoformat(),
        "yes",
        EARLIER.isoformat(),
    ]
    assert sections[3] == [
        ["school_id", "reference", "debrief_action", "owner", "due_on", "overdue", "reminders_sent"],
        ["st-marks", "REF-a", "one", "s-bird", "2026-03-01", "yes", "2"],
    ]
    assert sections[4][1] == ["st-marks", "1", "2022-10-31", "yes", ""]
