"""The shape of a school's policy file: its people, calendar, report form and rules, validated on load."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, time
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, field_validator, model_validator

from services.routing.policy.calendar import BankHolidays, WorkingCalendar
from services.routing.policy.notifying import (
    LONGEST_REFERENCE,
    SMS_SEGMENT,
    ChannelName,
    NotificationPlan,
    QuietHours,
)
from services.routing.policy.rules import AgeRange, DeadlineRule, Fallback, Rule, Then, When
from services.routing.policy.vocabulary import (
    ANONYMOUS,
    ID_PATTERN,
    NAME_PATTERN,
    WEEKDAYS,
    OnlineRiskArea,
    ParentDecision,
    PolicyPart,
    SchoolRole,
    Urgency,
    Weekday,
    Within,
    name_key,
    platform_key,
    quoted_time,
)
from shared.contracts.concern import ConcernReport
from shared.contracts.parent_message import ParentMessage

__all__ = [
    "ANONYMOUS",
    "WEEKDAYS",
    "AgeRange",
    "ContactChannels",
    "DateSpan",
    "DeadlineRule",
    "Fallback",
    "Kind",
    "NotificationPlan",
    "ParentDecision",
    "Person",
    "Platform",
    "Policy",
    "PolicySource",
    "Question",
    "ReportForm",
    "Rule",
    "School",
    "SchoolRole",
    "Then",
    "Urgency",
    "When",
    "Within",
    "WorkingDays",
    "name_key",
    "platform_key",
]


def _unique(ids: Iterable[str], *, what: str) -> None:
    seen: set[str] = set()
    for one in ids:
        if one in seen:
            raise ValueError(f"{what} {one!r} appears more than once")
        seen.add(one)


class School(PolicyPart):
    id: str = Field(pattern=ID_PATTERN, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    trust: str | None = Field(default=None, max_length=200)


class PolicySource(PolicyPart):
    """The written policy this file encodes, and when it is due for review."""

    title: str = Field(min_length=1)
    written: str = ""
    ratified: date | None = None
    next_review: date
    url: str | None = None


class ContactChannels(PolicyPart):
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ]{6,19}$", description="for SMS")
    push: bool = False
    prefer: tuple[ChannelName, ...] = Field(
        default=(), description="the person's own choice of channels, used where the policy's personal_choice allows"
    )
    quiet_hours: QuietHours | None = Field(
        default=None, description="the person's own quiet hours for non-urgent messages, in place of the school's"
    )

    @model_validator(mode="after")
    def _reachable(self) -> ContactChannels:
        if not (self.email or self.phone or self.push):
            raise ValueError("a person needs at least one way to be reached: email, phone or push")
        return self


class Person(PolicyPart):
    id: str = Field(pattern=ID_PATTERN, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    roles: tuple[SchoolRole, ...] = Field(min_length=1)
    contact: ContactChannels
    external: bool = Field(default=False, description="not on the school's staff (e.g. the LADO)")
    aliases: tuple[str, ...] = Field(default=(), description="other names the person is known by")


class DateSpan(PolicyPart):
    starts: date
    ends: date
    label: str = ""

    @model_validator(mode="after")
    def _in_order(self) -> DateSpan:
        if self.ends < self.starts:
            raise ValueError(f"span {self.label!r} ends before it starts")
        return self


class WorkingDays(PolicyPart):
    """Which days and hours count as working time for deadlines."""

    timezone: str = "Europe/London"
    weekdays: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    day_starts: time = time(8, 0)
    day_ends: time = time(17, 0)
    bank_holidays: Literal["england_and_wales", "none"] = "england_and_wales"
    closures: tuple[DateSpan, ...] = ()
    terms: tuple[DateSpan, ...] = Field(default=(), description="optional; days outside every term rest")

    @field_validator("day_starts", "day_ends", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        return quoted_time(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _sensible(self) -> WorkingDays:
        if not self.weekdays:
            raise ValueError("at least one weekday must be a working day")
        if self.day_ends <= self.day_starts:
            raise ValueError("day_ends must be after day_starts")
        return self


class Kind(PolicyPart):
    """One kind of concern the report form offers, where it comes from and how urgent it is at least."""

    id: str = Field(pattern=NAME_PATTERN, max_length=80)
    label: str = Field(min_length=1)
    section: str = ""
    area: OnlineRiskArea | None = Field(default=None, description="KCSIE's area of online risk")
    default_urgency: Urgency | None = Field(default=None, description="when no matching rule sets one")
    min_urgency: Urgency | None = Field(default=None, description="no rule may route it lower")


class Platform(PolicyPart):
    """A platform the report form offers; `id` is the name folded (lower case letters and digits only)."""

    id: str = Field(pattern=r"^[a-z0-9]+$", max_length=80)
    label: str = Field(min_length=1)


_FORM_FIELDS = frozenset(ConcernReport.model_fields) - {"answers"}


class Question(PolicyPart):
    """A question on the report form; `field` names the concern field its answer fills."""

    id: str = Field(pattern=NAME_PATTERN, max_length=80)
    text: str = Field(min_length=1)
    type: Literal["text", "long_text", "yes_no", "yes_no_not_sure", "choice", "date_time", "people", "reporter"]
    required: bool = False
    field: str | None = Field(default=None, description="a concern field; otherwise the answer is kept by id")
    help: str = ""
    options: tuple[str, ...] = ()
    options_from: Literal["kinds", "platforms"] | None = None

    @model_validator(mode="after")
    def _fits(self) -> Question:
        if self.field is not None and self.field not in _FORM_FIELDS:
            raise ValueError(f"question {self.id!r}: {self.field!r} is not a field of a concern")
        if self.type == "choice" and not (self.options or self.options_from):
            raise ValueError(f"question {self.id!r}: a choice needs options or options_from")
        return self


class ReportForm(PolicyPart):
    questions: tuple[Question, ...] = Field(min_length=1)


class Policy(PolicyPart):
    """One school's safeguarding policy as data."""

    version: int = Field(ge=1)
    school: School
    source: PolicySource
    people: tuple[Person, ...] = Field(min_length=1)
    acknowledge_within: dict[Urgency, Within]
    working_days: WorkingDays = WorkingDays()
    kinds: tuple[Kind, ...] = Field(min_length=1)
    platforms: tuple[Platform, ...] = ()
    report_form: ReportForm
    rules: tuple[Rule, ...] = ()
    fallback: Fallback
    notifications: NotificationPlan = NotificationPlan()

    _digest: str = PrivateAttr(default="")
    _calendar: WorkingCalendar | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _coherent(self) -> Policy:
        _unique((p.id for p in self.people), what="person id")
        _unique((k.id for k in self.kinds), what="kind")
        _unique((p.id for p in self.platforms), what="platform")
        _unique((r.id for r in self.rules), what="rule id")
        _unique((q.id for q in self.report_form.questions), what="question id")
        if not any(SchoolRole.designated_safeguarding_lead in p.roles for p in self.people):
            raise ValueError("the policy must name a designated_safeguarding_lead")
        missing = [u.value for u in Urgency if u not in self.acknowledge_within]
        if missing:
            raise ValueError(f"acknowledge_within must give a time for every urgency; missing {missing}")
        known = {k.id for k in self.kinds}
        for rule in self.rules:
            unknown = sorted(set(rule.when.kinds or ()) - known)
            if unknown:
                raise ValueError(f"rule {rule.id!r} names kinds the policy does not list: {unknown}")
        if self.notifications.parent_message is not None:
            words = self.notifications.parent_message.for_school(self.school.name)
            sms = words.rendered(reference=LONGEST_REFERENCE)["sms"]
            if len(sms) > SMS_SEGMENT:
                raise ValueError(f"notifications.parent_message.sms is {len(sms)} characters filled in; at most 160")
        asked = {q.field for q in self.report_form.questions}
        for needed in ("kind", "immediate_risk"):
            if needed not in asked:
                raise ValueError(f"the report form must ask a question for {needed!r}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Build the working calendar and compute the content digest."""
        bank_holidays: BankHolidays | None = (context or {}).get("bank_holidays")
        if bank_holidays is None:
            self._calendar = WorkingCalendar(self.working_days)
        else:
            self._calendar = WorkingCalendar(self.working_days, bank_holidays=bank_holidays)
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        self._digest = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        """A copy validated afresh: a plain copy would carry over the old digest and the engine's indexes."""
        data = self.model_dump(mode="json") | dict(update or {})
        return type(self).model_validate(data, context={"bank_holidays": self.calendar.bank_holidays})

    # Read on every decision: cached in the instance once, because pydantic's private attributes are slow.
    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The school's working calendar, for deadlines."""
        assert self._calendar is not None
        return self._calendar

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the policy's content (comments and layout of the file do not change it)."""
        return self._digest

    @cached_property
    def _people_by_id(self) -> dict[str, Person]:
        return {p.id: p for p in self.people}

    @cached_property
    def kinds_by_id(self) -> dict[str, Kind]:
        """The kinds of concern the policy lists, by id."""
        return {k.id: k for k in self.kinds}

    @cached_property
    def person_ids(self) -> frozenset[str]:
        """The ids of everyone the policy names."""
        return frozenset(p.id for p in self.people)

    @cached_property
    def _holders_by_role(self) -> dict[SchoolRole, tuple[Person, ...]]:
        return {role: tuple(p for p in self.people if role in p.roles) for role in SchoolRole}

    @cached_property
    def engine_cache(self) -> dict[Any, Any]:
        """Where the engine keeps what it derives from this policy (indexes, recipients): never changes."""
        return {}

    def parent_message(self) -> ParentMessage | None:
        """The school's words to parents, as a notification request to a parent or carer carries them."""
        template = self.notifications.parent_message
        return template.for_school(self.school.name) if template is not None else None

    def person(self, person_id: str) -> Person | None:
        """The person with this id, if the policy names them."""
        return self._people_by_id.get(person_id)

    def holders(self, role: SchoolRole) -> tuple[Person, ...]:
        """Everyone who holds `role`, in file order."""
        return self._holders_by_role[role]
