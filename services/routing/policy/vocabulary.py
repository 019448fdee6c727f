"""The words a policy file is written in: school roles, urgencies, parents' decisions, lengths of time."""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SchoolRole(StrEnum):
    """A part a person plays in the school's safeguarding arrangements."""

    designated_safeguarding_lead = "designated_safeguarding_lead"
    deputy_designated_safeguarding_lead = "deputy_designated_safeguarding_lead"
    headteacher = "headteacher"
    named_governor = "named_governor"
    pastoral_lead = "pastoral_lead"
    leadership_team = "leadership_team"
    local_authority_designated_officer = "local_authority_designated_officer"
    trust_safeguarding_lead = "trust_safeguarding_lead"
    online_safety_lead = "online_safety_lead"
    behaviour_lead = "behaviour_lead"
    head_of_year = "head_of_year"
    class_teacher = "class_teacher"
    line_manager = "line_manager"
    data_protection_officer = "data_protection_officer"
    # Looks after the console's people and the policy itself (adopts new versions); never told about a concern.
    trust_administrator = "trust_administrator"


# The roles the safety floor and the case rules name; everyone else says them through these.
DSL = SchoolRole.designated_safeguarding_lead
DEPUTY = SchoolRole.deputy_designated_safeguarding_lead
HEADTEACHER = SchoolRole.headteacher
NAMED_GOVERNOR = SchoolRole.named_governor
LADO = SchoolRole.local_authority_designated_officer
TRUST_LEAD = SchoolRole.trust_safeguarding_lead
TRUST_ADMINISTRATOR = SchoolRole.trust_administrator

# Roles every school fills; `policy check` warns when one is empty. The others it warns about only when a
# rule asks for them (a school may have no head of year, say).
CORE_ROLES = frozenset(
    {
        DSL,
        DEPUTY,
        HEADTEACHER,
        NAMED_GOVERNOR,
        SchoolRole.pastoral_lead,
        SchoolRole.leadership_team,
        LADO,
    }
)


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


class OnlineRiskArea(StrEnum):
    """KCSIE's four areas of risk online."""

    content = "content"
    contact = "contact"
    conduct = "conduct"
    commerce = "commerce"


class ParentDecision(StrEnum):
    """Whether the child's parents or carers are informed: a DSL can tell the four apart at a glance."""

    inform = "inform"
    dsl_decides = "dsl_decides"
    must_not_tell = "must_not_tell"
    not_applicable = "not_applicable"


def parents_from_file(value: object) -> object:
    """A policy file's older word "withhold" read safely: the system must not tell them."""
    return ParentDecision.must_not_tell.value if value == "withhold" else value


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ANONYMOUS = "anonymous"
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


def platform_key(name: str) -> str:
    """A platform name folded for comparison: 'Tik Tok', 'tiktok' and 'TikTok' are one platform."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def name_key(name: str) -> str:
    """A person's name folded for comparison: case, dots and extra spaces ignored."""
    return " ".join(re.sub(r"[^\w\s]", " ", name.casefold()).split())


class PolicyPart(BaseModel):
    """A part of a policy file: frozen, and strict about keys it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Within(PolicyPart):
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
    def acknowledge_text(self) -> str:
        """The acknowledgement deadline's description for this length of time."""
        return f"Acknowledge the concern within {self.described}."

    @cached_property
    def described(self) -> str:
        """The length in words, e.g. '1 working day'."""
        for unit, amount in self.model_dump(exclude_none=True).items():
            label = unit.replace("_", " ")
            return f"{amount} {label[:-1] if amount == 1 else label}"
        return ""


def quoted_time(value: Any) -> Any:
    """A time of day must be written in quotes: YAML reads an unquoted 17:00 as the number 1020."""
    if not isinstance(value, str | time):
        raise ValueError('write times in quotes, like "08:00"')
    return value
