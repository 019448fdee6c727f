"""A policy's rules: the conditions a concern is matched on, and what a matching rule asks for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.routing.policy.vocabulary import (
    ID_PATTERN,
    NAME_PATTERN,
    ParentDecision,
    PolicyPart,
    SchoolRole,
    Urgency,
    Within,
    parents_from_file,
    platform_key,
)
from shared.contracts.concern import PersonRole


class AgeRange(PolicyPart):
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


class When(PolicyPart):
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


class DeadlineRule(PolicyPart):
    kind: str = Field(pattern=NAME_PATTERN, max_length=80)
    within: Within
    description: str = ""


class Then(PolicyPart):
    """What a matching rule asks for; the safety floor may add to it but never weakens it."""

    category: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=80)
    urgency: Urgency | None = None
    notify: tuple[SchoolRole, ...] = ()
    parents: ParentDecision | None = None
    parents_reason: str = ""
    deadlines: tuple[DeadlineRule, ...] = ()
    guidance: str = ""
    formal_record: bool = Field(default=False, description="the decision made must be formally recorded")
    reporter_is_subject: bool = Field(default=False, description="the reporter speaks about themselves")

    @field_validator("parents", mode="before")
    @classmethod
    def _older_word(cls, value: object) -> object:
        return parents_from_file(value)


class Rule(PolicyPart):
    id: str = Field(pattern=ID_PATTERN, max_length=80)
    section: str = Field(min_length=1, description="the policy section the rule comes from")
    title: str = Field(min_length=1)
    when: When
    then: Then


class Fallback(PolicyPart):
    """Category, urgency and guidance when no rule matches (or matching rules leave them unset)."""

    category: str = Field(pattern=NAME_PATTERN, max_length=80)
    urgency: Urgency
    guidance: str = ""
