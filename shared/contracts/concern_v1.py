"""Version 1 of the concern as published in `concern.received` v1: frozen, for old events and their schema.

Nothing builds these any more: a v1 event is upcast to v2 when parsed. The classes keep v1's names so its
published JSON schema stays exactly as it was.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from shared.contracts import concern as current
from shared.contracts.concern import Channel

# Version 1's roles: every one of today's but the "unknown adult" version 2 added.
PersonRole = StrEnum(  # type: ignore[misc]
    "PersonRole", {role.name: role.value for role in current.PersonRole if role is not current.PersonRole.unknown_adult}
)
PersonRole.__doc__ = current.PersonRole.__doc__


class Reporter(current.Reporter):
    """Who raised the concern. `anonymous` reporters give no name or contact."""

    role: PersonRole | None = Field(default=None, description="None when the reporter is anonymous")  # type: ignore[assignment]


class PersonInConcern(current.PersonInConcern):
    """A person the concern is about or who was involved, with their own role in it."""

    role: PersonRole  # type: ignore[assignment]


class ConcernReport(current.ConcernReport):
    """What a reporter tells us, whatever the channel."""

    reporter: Reporter
    people: list[PersonInConcern] = Field(min_length=1, max_length=50)  # type: ignore[assignment]
    immediate_risk: bool = False  # type: ignore[assignment]

    @field_validator("immediate_risk", mode="before")
    @classmethod
    def _old_boolean(cls, value: Any) -> Any:
        return value  # version 1 took the box as it was


class ConcernReceivedPayload(ConcernReport):
    """A report as intake accepted it: the report plus where and when it came in."""

    reference: str = Field(min_length=4, max_length=40)
    channel: Channel
    raw_input_id: str = Field(description="id of the raw input intake stored before parsing")
    received_at: datetime
