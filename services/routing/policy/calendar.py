"""Working-day arithmetic: deadlines that skip weekends, England and Wales bank holidays and closures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from services.routing.policy.model import Within, WorkingDays

BankHolidays = Callable[[int], frozenset[date]]

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A calendar whose every day rests (say, a term list with no end) must not hang a deadline.
_SEARCH_LIMIT_DAYS = 800


@lru_cache(maxsize=64)
def england_and_wales_bank_holidays(year: int) -> frozenset[date]:
    """The bank holidays of England and Wales in `year`, substitute days included."""
    # Imported here: the holidays package takes a noticeable time to import and most commands never need it.
    from holidays.countries.united_kingdom import UnitedKingdom

    england = UnitedKingdom(subdiv="ENG", years=year)
    wales = UnitedKingdom(subdiv="WLS", years=year)
    return frozenset(england) | frozenset(wales)


def no_bank_holidays(year: int) -> frozenset[date]:
    """No bank holidays at all (for a policy that sets `bank_holidays: none`)."""
    return frozenset()


@dataclass(frozen=True)
class WorkingCalendar:
    """One school's working time: which days count, and the hours of a working day."""

    working_days: WorkingDays
    bank_holidays: BankHolidays = england_and_wales_bank_holidays
    zone: ZoneInfo = field(init=False)
    _weekdays: frozenset[int] = field(init=False)
    _known: dict[date, bool] = field(init=False, default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", ZoneInfo(self.working_days.timezone))
        object.__setattr__(self, "_weekdays", frozenset(_DAY_NAMES.index(d) for d in self.working_days.weekdays))
        if self.working_days.bank_holidays == "none":
            object.__setattr__(self, "bank_holidays", no_bank_holidays)

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day (memoised: the answer for a date never changes)."""
        known = self._known.get(day)
        if known is None:
            known = self._decide_working_day(day)
            self._known[day] = known
        return known

    def _decide_working_day(self, day: date) -> bool:
        rules = self.working_days
        if day.weekday() not in self._weekdays or day in self.bank_holidays(day.year):
            return False
        if any(span.starts <= day <= span.ends for span in rules.closures):
            return False
        if rules.terms:
            first = min(span.starts for span in rules.terms)
            last = max(span.ends for span in rules.terms)
            # Outside the listed school year every weekday counts, so stale term dates never stall a deadline.
            if first <= day <= last:
                return any(span.starts <= day <= span.ends for span in rules.terms)
        return True

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        for step in range(1, _SEARCH_LIMIT_DAYS):
            candidate = day + timedelta(days=step)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_SEARCH_LIMIT_DAYS} days of {day}")

    def local(self, moment: datetime) -> datetime:
        """`moment` in the school's timezone (a naive time is taken to be UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def on(self, day: date, *, same_time_as: datetime | None = None) -> datetime:
        """The start of working time on `day`, or the wall-clock time of `same_time_as` on that day."""
        wall = same_time_as.time() if same_time_as is not None else self.working_days.day_starts
        return datetime.combine(day, wall, tzinfo=self.zone)

    def start_of_working_time(self, moment: datetime) -> datetime:
        """`moment` if it falls in working hours, else when working time next begins."""
        local = self.local(moment)
        day, clock = local.date(), local.time()
        if self.is_working_day(day):
            if clock < self.working_days.day_starts:
                return self.on(day)
            if clock <= self.working_days.day_ends:
                return local
        return self.on(self.next_working_day(day))


def add_working_days(start: datetime, *, days: int, calendar: WorkingCalendar) -> datetime:
    """The same time of day `days` working days on; a start outside working time counts from its next start."""
    begin = calendar.start_of_working_time(start)
    day = begin.date()
    for _ in range(days):
        day = calendar.next_working_day(day)
    return calendar.on(day, same_time_as=begin)


def add_working_hours(start: datetime, *, hours: float, calendar: WorkingCalendar) -> datetime:
    """The moment `hours` of working time after `start`, carrying over into following working days."""
    remaining = timedelta(hours=hours)
    moment = calendar.start_of_working_time(start)
    while True:
        day_end = datetime.combine(moment.date(), calendar.working_days.day_ends, tzinfo=calendar.zone)
        left_today = day_end - moment
        if remaining <= left_today:
            return moment + remaining
        remaining -= left_today
        moment = calendar.on(calendar.next_working_day(moment.date()))


def due_at(start: datetime, *, within: Within, calendar: WorkingCalendar) -> datetime:
    """When something `within` this long of `start` falls due, in the school's timezone."""
    if within.working_days is not None:
        return add_working_days(start, days=within.working_days, calendar=calendar)
    if within.working_hours is not None:
        return add_working_hours(start, hours=within.working_hours, calendar=calendar)
    clock = timedelta(minutes=within.minutes or 0, hours=within.hours or 0)
    return calendar.local(calendar.local(start).astimezone(UTC) + clock)
