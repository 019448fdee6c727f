"""Working-day arithmetic: weekends, England and Wales bank holidays, closures, terms and clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing.policy import WorkingCalendar, add_working_days, add_working_hours, due_at
from services.routing.policy.calendar import england_and_wales_bank_holidays
from services.routing.policy.model import Within, WorkingDays

LONDON = ZoneInfo("Europe/London")
CALENDAR = WorkingCalendar(WorkingDays())


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        pytest.param(london(2024, 3, 5, 10, 0), 1, london(2024, 3, 6, 10, 0), id="tuesday to wednesday"),
        pytest.param(london(2024, 3, 8, 16, 0), 1, london(2024, 3, 11, 16, 0), id="friday to monday"),
        pytest.param(london(2024, 3, 28, 10, 0), 1, london(2024, 4, 2, 10, 0), id="over easter"),
        pytest.param(london(2021, 12, 24, 9, 0), 1, london(2021, 12, 29, 9, 0), id="christmas substitute days"),
        pytest.param(london(2022, 6, 1, 12, 0), 1, london(2022, 6, 6, 12, 0), id="platinum jubilee"),
        pytest.param(london(2023, 5, 5, 11, 0), 1, london(2023, 5, 9, 11, 0), id="coronation bank holiday"),
        pytest.param(london(2024, 3, 9, 14, 0), 1, london(2024, 3, 12, 8, 0), id="saturday counts from monday"),
        pytest.param(london(2024, 3, 4, 18, 30), 1, london(2024, 3, 6, 8, 0), id="evening counts from next day"),
        pytest.param(london(2024, 3, 4, 6, 0), 1, london(2024, 3, 5, 8, 0), id="early counts from same day"),
        pytest.param(london(2024, 3, 5, 10, 0), 5, london(2024, 3, 12, 10, 0), id="a working week"),
    ],
)
def test_add_working_days(start: datetime, days: int, expected: datetime) -> None:
    assert add_working_days(start, days=days, calendar=CALENDAR) == expected


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(london(2024, 3, 5, 10, 0), 4, london(2024, 3, 5, 14, 0), id="same day"),
        pytest.param(london(2024, 3, 4, 16, 0), 4, london(2024, 3, 5, 11, 0), id="into the next day"),
        pytest.param(london(2024, 3, 8, 16, 30), 4, london(2024, 3, 11, 11, 30), id="over a weekend"),
        pytest.param(london(2024, 5, 24, 16, 0), 2, london(2024, 5, 28, 9, 0), id="over a bank holiday weekend"),
        pytest.param(london(2024, 3, 5, 17, 0), 1, london(2024, 3, 6, 9, 0), id="at the end of the day"),
        pytest.param(london(2024, 3, 5, 8, 0), 9, london(2024, 3, 5, 17, 0), id="a whole working day"),
    ],
)
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert add_working_hours(start, hours=hours, calendar=CALENDAR) == expected


def test_working_hours_across_the_clocks_going_back_keep_the_wall_clock() -> None:
    friday = datetime(2024, 10, 25, 15, 0, tzinfo=UTC)  # 16:00 British Summer Time
    due = add_working_hours(friday, hours=2, calendar=CALENDAR)
    assert due == datetime(2024, 10, 28, 9, 0, tzinfo=UTC)  # 09:00 GMT on Monday


def test_clock_hours_are_real_elapsed_time_across_the_clocks_going_forward() -> None:
    night = datetime(2024, 3, 30, 23, 30, tzinfo=UTC)
    due = due_at(night, within=Within(hours=2), calendar=CALENDAR)
    assert due == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert due.utcoffset() == timedelta(hours=1)


def test_a_naive_time_is_taken_as_utc() -> None:
    assert due_at(datetime(2024, 7, 1, 9, 0), within=Within(minutes=15), calendar=CALENDAR) == datetime(
        2024, 7, 1, 9, 15, tzinfo=UTC
    )


def test_england_and_wales_bank_holidays() -> None:
    assert england_and_wales_bank_holidays(2024) == {
        date(2024, 1, 1),
        date(2024, 3, 29),
        date(2024, 4, 1),
        date(2024, 5, 6),
        date(2024, 5, 27),
        date(2024, 8, 26),
        date(2024, 12, 25),
        date(2024, 12, 26),
    }


def test_closures_are_not_working_days() -> None:
    calendar = WorkingCalendar(
        WorkingDays(closures=[{"starts": date(2024, 3, 6), "ends": date(2024, 3, 7), "label": "snow"}])
    )
    assert add_working_days(london(2024, 3, 5, 10, 0), days=1, calendar=calendar) == london(2024, 3, 8, 10, 0)


def test_days_between_terms_rest_but_weekdays_after_the_last_term_count() -> None:
    terms = [
        {"starts": date(2024, 1, 8), "ends": date(2024, 3, 28), "label": "spring"},
        {"starts": date(2024, 4, 15), "ends": date(2024, 7, 23), "label": "summer"},
    ]
    calendar = WorkingCalendar(WorkingDays(terms=terms))
    assert not calendar.is_working_day(date(2024, 4, 3))
    assert add_working_days(london(2024, 3, 28, 10, 0), days=1, calendar=calendar) == london(2024, 4, 15, 10, 0)
    assert calendar.is_working_day(date(2024, 9, 2))


def test_a_policy_without_bank_holidays_works_on_them() -> None:
    calendar = WorkingCalendar(WorkingDays(bank_holidays="none"))
    assert calendar.is_working_day(date(2024, 12, 25))


def test_the_bank_holiday_source_can_be_replaced() -> None:
    calendar = WorkingCalendar(WorkingDays(), bank_holidays=lambda year: frozenset({date(year, 3, 6)}))
    assert add_working_days(london(2024, 3, 5, 10, 0), days=1, calendar=calendar) == london(2024, 3, 7, 10, 0)


def test_a_calendar_with_no_working_days_left_says_so_rather_than_hanging() -> None:
    calendar = WorkingCalendar(
        WorkingDays(closures=[{"starts": date(2024, 1, 1), "ends": date(2030, 1, 1), "label": "closed"}])
    )
    with pytest.raises(ValueError, match="no working day"):
        add_working_days(london(2024, 3, 5, 10, 0), days=1, calendar=calendar)


moments = st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))


@given(start=moments, days=st.integers(min_value=1, max_value=20))
def test_working_days_land_on_a_working_day_in_working_hours_after_the_start(start: datetime, days: int) -> None:
    due = add_working_days(start, days=days, calendar=CALENDAR)
    assert due > start
    assert CALENDAR.is_working_day(due.date())
    assert CALENDAR.working_days.day_starts <= due.time() <= CALENDAR.working_days.day_ends
    assert due - start >= timedelta(days=days)


@given(start=moments, hours=st.integers(min_value=1, max_value=40))
def test_working_hours_land_in_working_hours_after_the_start(start: datetime, hours: int) -> None:
    due = add_working_hours(start, hours=hours, calendar=CALENDAR)
    assert due >= start + timedelta(hours=hours)
    assert CALENDAR.is_working_day(due.date())
    assert CALENDAR.working_days.day_starts <= due.time() <= CALENDAR.working_days.day_ends
