"""The shape of a concern as a reporter gives it, shared by intake, routing and the CLI."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """Refuse characters PostgreSQL cannot keep in text or JSONB: NUL and unpaired UTF-16 surrogates."""
    if "\x00" in text:
        raise ValueError("contains a NUL character (U+0000), which cannot be stored")
    if not text.isascii() and (surrogate := _SURROGATE.search(text)) is not None:
        raise ValueError(f"contains an unpaired surrogate (U+{ord(surrogate.group()):04X}), which cannot be stored")
    return text


# Every text a reporter gives passes `storable`; the error names the field, never echoes the text.
Text = Annotated[str, AfterValidator(storable)]


class PersonRole(StrEnum):
    """Who a person is to the school. Adults in the school may also carry a `person_id` from the policy."""

    learner = "learner"
    former_learner = "former_learner"
    parent_carer = "parent_carer"
    staff = "staff"
    headteacher = "headteacher"
    volunteer = "volunteer"
    contractor = "contractor"
    governor = "governor"
    visitor = "visitor"
    member_of_public = "member_of_public"
    unknown_adult = "unknown_adult"
    unknown = "unknown"


class RiskAnswer(StrEnum):
    """The answer to "is a child at immediate risk of harm?": only "no" counts as no."""

    yes = "yes"
    no = "no"
    not_sure = "not_sure"
    not_answered = "not_answered"


def risk_answer_from_old_boolean(value: Any) -> Any:
    """Version 1 sent a box ticked or not: ticked is "yes"; unticked cannot tell "no" from "not answered".

    So an unticked box reads as "not answered", never as "no": only the new answer "no" says no.
    """
    if value is True:
        return RiskAnswer.yes.value
    if value is False:
        return RiskAnswer.not_answered.value
    return value


ADULTS_WORKING_WITH_CHILDREN = frozenset(
    {
        PersonRole.staff,
        PersonRole.headteacher,
        PersonRole.volunteer,
        PersonRole.contractor,
        PersonRole.governor,
    }
)


class Involvement(StrEnum):
    """The part a person plays in this concern; each person carries their own."""

    subject = "subject"
    alleged_perpetrator = "alleged_perpetrator"
    victim = "victim"
    witness = "witness"


class Channel(StrEnum):
    web_form = "web_form"
    json_api = "json_api"
    email = "email"
    webhook = "webhook"


class _Frozen(BaseModel):
    # Validators are built on first use: `safeguard route` needs only the received concern's, not one per class.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Reporter(_Frozen):
    """Who raised the concern. `anonymous` reporters give no name or contact."""

    role: PersonRole | None = Field(default=None, description="None when the reporter is anonymous")
    anonymous: bool = False
    name: Text | None = Field(default=None, max_length=200)
    contact: Text | None = Field(default=None, max_length=320, description="email address or phone number")
    person_id: Text | None = Field(default=None, max_length=100, description="id of a person in the policy")
    age: int | None = Field(default=None, ge=0, le=130)

    @model_validator(mode="after")
    def _anonymous_means_unnamed(self) -> Reporter:
        if self.anonymous and (self.name or self.contact or self.person_id):
            raise ValueError("an anonymous reporter carries no name, contact or person_id")
        if not self.anonymous and self.role is None:
            raise ValueError("role is required unless the reporter is anonymous")
        return self


class PersonInConcern(_Frozen):
    """A person the concern is about or who was involved, with their own role in it."""

    role: PersonRole
    involvement: Involvement
    person_id: Text | None = Field(default=None, max_length=100, description="id of a person in the policy")
    name: Text | None = Field(default=None, max_length=200)
    age: int | None = Field(default=None, ge=0, le=130)
    year_group: Text | None = Field(default=None, max_length=40)


class ConcernReport(_Frozen):
    """What a reporter tells us, whatever the channel."""

    reporter: Reporter
    people: list[PersonInConcern] = Field(min_length=1, max_length=50)
    kind: Text = Field(
        min_length=1,
        max_length=80,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="the kind of concern, from the school's policy vocabulary (e.g. online_bullying)",
    )
    summary: Text = Field(min_length=1, max_length=300)
    details: Text = Field(default="", max_length=20_000)
    platform: Text | None = Field(default=None, max_length=80)
    in_school_hours: bool | None = None
    on_school_device: bool | None = None
    immediate_risk: RiskAnswer = Field(
        default=RiskAnswer.not_answered,
        description='yes, no, not_sure or not_answered; true/false from older clients read as "yes"/"not_answered"',
    )
    telling_parents_may_increase_risk: bool = False
    harm_from_parent_or_carer: bool = False
    occurred_at: datetime | None = None
    answers: dict[Text, Text] = Field(default_factory=dict, max_length=100)

    @field_validator("immediate_risk", mode="before")
    @classmethod
    def _old_boolean(cls, value: Any) -> Any:
        return risk_answer_from_old_boolean(value)

    def subjects(self) -> list[PersonInConcern]:
        """The people the concern is about: its subjects and alleged perpetrators."""
        return [p for p in self.people if p.involvement in (Involvement.subject, Involvement.alleged_perpetrator)]


class ConcernReceivedPayload(ConcernReport):
    """A report as intake accepted it: the report plus where and when it came in."""

    reference: str = Field(min_length=4, max_length=40)
    channel: Channel
    raw_input_id: str = Field(description="id of the raw input intake stored before parsing")
    received_at: datetime
