"""The shape of a school's policy file: its people, calendar, report form and rules, validated on load."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import date, time
from functools import cached_property
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from services.routing.policy.calendar import BankHolidays, WorkingCalendar
from shared.contracts.concern import ConcernReport, PersonRole


class SchoolRole(StrEnum):
    """A part a person plays in the school's safeguarding arrangements."""

    designated_safeguarding_lead = "designated_safeguarding_lead"
    deputy_designated_safeguarding_lead = "deputy_designated_safeguarding_lead"
    headteacher = "headteacher"
    named_governor = "named_governor"
    pastoral_lead = "pastoral_lead"
    leadership_team = "leadership_team"
    local_authority_designated_officer = "local_authority_designated_officer"


class Urgency(StrEnum):
    """How fast someone must act, lowest first (the same words as the case.triaged event)."""

    low = "low"
    medium = "medium"
    high = "high"
    immediate = "immediate"

    @property
    def rank(self) -> int:
        """Position in the order low < medium < high < immediate."""
        return _URGENCY_RANK[self]


_URGENCY_RANK = {Urgency.low: 0, Urgency.medium: 1, Urgency.high: 2, Urgency.immediate: 3}


class ParentDecision(StrEnum):
    """Whether the child's parents or carers are informed."""

    inform = "inform"
    withhold = "withhold"
    not_applicable = "not_applicable"


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ANONYMOUS = "anonymous"
_ID = r"^[a-z0-9][a-z0-9_-]*$"
_SNAKE = r"^[a-z][a-z0-9_]*$"


def platform_key(name: str) -> str:
    """A platform name folded for comparison: 'Tik Tok', 'tiktok' and 'TikTok' are one platform."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def name_key(name: str) -> str:
    """A person's name folded for comparison: case, dots and extra spaces ignored."""
    return " ".join(re.sub(r"[^\w\s]", " ", name.casefold()).split())


def _unique(ids: Iterable[str], *, what: str) -> None:
    seen: set[str] = set()
    for one in ids:
        if one in seen:
            raise ValueError(f"{what} {one!r} appears more than once")
        seen.add(one)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class School(_Strict):
    id: str = Field(pattern=_ID, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    trust: str | None = Field(default=None, max_length=200)


class PolicySource(_Strict):
    """The written policy this file encodes, and when it is due for review."""

    title: str = Field(min_length=1)
    written: str = ""
    ratified: date | None = None
    next_review: date
    url: str | None = None


class ContactChannels(_Strict):
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ]{6,19}$", description="for SMS")
    push: bool = False

    @model_validator(mode="after")
    def _reachable(self) -> ContactChannels:
        if not (self.email or self.phone or self.push):
            raise ValueError("a person needs at least one way to be reached: email, phone or push")
        return self


class Person(_Strict):
    id: str = Field(pattern=_ID, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    roles: tuple[SchoolRole, ...] = Field(min_length=1)
    contact: ContactChannels
    external: bool = Field(default=False, description="not on the school's staff (e.g. the LADO)")


class Within(_Strict):
    """A length of time: exactly one of clock minutes or hours, working hours or working days."""

    minutes: int | None = Field(default=None, ge=1)
    hours: int | None = Field(default=None, ge=1)
    working_hours: int | None = Field(default=None, ge=1)
    working_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Within:
        given = [v for v in (self.minutes, self.hours, self.working_hours, self.working_days) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of minutes, hours, working_hours, working_days")
        return self

    @cached_property
    def described(self) -> str:
        """The length in words, e.g. '1 working day'."""
        for unit, amount in self.model_dump(exclude_none=True).items():
            label = unit.replace("_", " ")
            return f"{amount} {label[:-1] if amount == 1 else label}"
        return ""


class DateSpan(_Strict):
    starts: date
    ends: date
    label: str = ""

    @model_validator(mode="after")
    def _in_order(self) -> DateSpan:
        if self.ends < self.starts:
            raise ValueError(f"span {self.label!r} ends before it starts")
        return self


class WorkingDays(_Strict):
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
        # YAML reads an unquoted 17:00 as the number 1020; a time must be written "17:00".
        if not isinstance(value, str | time):
            raise ValueError('write times in quotes, like "08:00"')
        return value

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


class Kind(_Strict):
    """One kind of concern the report form offers."""

    id: str = Field(pattern=_SNAKE, max_length=80)
    label: str = Field(min_length=1)
    section: str = ""


class Platform(_Strict):
    """A platform the report form offers; `id` is the name folded (lower case letters and digits only)."""

    id: str = Field(pattern=r"^[a-z0-9]+$", max_length=80)
    label: str = Field(min_length=1)


_FORM_FIELDS = frozenset(ConcernReport.model_fields) - {"answers"}


class Question(_Strict):
    """A question on the report form; `field` names the concern field its answer fills."""

    id: str = Field(pattern=_SNAKE, max_length=80)
    text: str = Field(min_length=1)
    type: Literal["text", "long_text", "yes_no", "choice", "date_time", "people", "reporter"]
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


class ReportForm(_Strict):
    questions: tuple[Question, ...] = Field(min_length=1)


class AgeRange(_Strict):
    """Ages from `at_least` up to (not including) `under`."""

    at_least: int | None = Field(default=None, ge=0)
    under: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> AgeRange:
        if self.at_least is None and self.under is None:
            raise ValueError("give at_least, under or both")
        return self

    def contains(self, age: int) -> bool:
        """Whether `age` falls in the range."""
        return (self.at_least is None or age >= self.at_least) and (self.under is None or age < self.under)


class When(_Strict):
    """Match conditions: every condition given must hold; a list matches any of its entries."""

    kinds: tuple[str, ...] | None = Field(default=None, min_length=1)
    about: tuple[PersonRole, ...] | None = Field(default=None, min_length=1)
    involving: tuple[PersonRole, ...] | None = Field(default=None, min_length=1)
    reported_by: tuple[PersonRole | Literal["anonymous"], ...] | None = Field(default=None, min_length=1)
    platforms: tuple[str, ...] | None = Field(default=None, min_length=1)
    in_school_hours: bool | None = None
    on_school_device: bool | None = None
    immediate_risk: bool | None = None
    harm_from_parent_or_carer: bool | None = None
    subject_age: AgeRange | None = None
    reporter_age: AgeRange | None = None

    @field_validator("platforms")
    @classmethod
    def _fold_platforms(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(platform_key(p) for p in value)


class DeadlineRule(_Strict):
    kind: str = Field(pattern=_SNAKE, max_length=80)
    within: Within
    description: str = ""


class Then(_Strict):
    """What a matching rule asks for; the safety floor may add to it but never weakens it."""

    category: str | None = Field(default=None, pattern=_SNAKE, max_length=80)
    urgency: Urgency | None = None
    notify: tuple[SchoolRole, ...] = ()
    parents: ParentDecision | None = None
    parents_reason: str = ""
    deadlines: tuple[DeadlineRule, ...] = ()
    guidance: str = ""
    formal_record: bool = Field(default=False, description="the decision made must be formally recorded")
    reporter_is_subject: bool = Field(default=False, description="the reporter speaks about themselves")


class Rule(_Strict):
    id: str = Field(pattern=_ID, max_length=80)
    section: str = Field(min_length=1, description="the policy section the rule comes from")
    title: str = Field(min_length=1)
    when: When
    then: Then


class Fallback(_Strict):
    """Category, urgency and guidance when no rule matches (or matching rules leave them unset)."""

    category: str = Field(pattern=_SNAKE, max_length=80)
    urgency: Urgency
    guidance: str = ""


class Policy(_Strict):
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
    def _holders_by_role(self) -> dict[SchoolRole, tuple[Person, ...]]:
        return {role: tuple(p for p in self.people if role in p.roles) for role in SchoolRole}

    @cached_property
    def _ids_by_name(self) -> dict[str, tuple[str, ...]]:
        names: dict[str, list[str]] = {}
        for person in self.people:
            names.setdefault(name_key(person.name), []).append(person.id)
        return {key: tuple(ids) for key, ids in names.items()}

    @cached_property
    def _rules_by_kind(self) -> dict[str | None, tuple[Rule, ...]]:
        # Most rules name kinds, so a concern need only be tested against its kind's rules (in file order).
        by_kind: dict[str | None, tuple[Rule, ...]] = {
            kind.id: tuple(r for r in self.rules if r.when.kinds is None or kind.id in r.when.kinds)
            for kind in self.kinds
        }
        by_kind[None] = tuple(r for r in self.rules if r.when.kinds is None)
        return by_kind

    def rules_for_kind(self, kind: str) -> tuple[Rule, ...]:
        """The rules that could match a concern of this kind, in file order."""
        by_kind = self._rules_by_kind
        return by_kind.get(kind) or by_kind[None]

    @cached_property
    def recipient_cache(self) -> dict[tuple[str, SchoolRole], Any]:
        """Somewhere the engine keeps the recipients it has built for this policy (they never change)."""
        return {}

    def person(self, person_id: str) -> Person | None:
        """The person with this id, if the policy names them."""
        return self._people_by_id.get(person_id)

    def holders(self, role: SchoolRole) -> tuple[Person, ...]:
        """Everyone who holds `role`, in file order."""
        return self._holders_by_role[role]

    def people_named(self, name: str) -> tuple[str, ...]:
        """Ids of the people whose name matches `name` (ignoring case and punctuation)."""
        return self._ids_by_name.get(name_key(name), ())
