"""How people are told, as policy data: channels by urgency, quiet hours, and where a person's own choice counts.

Pure. The floor in code: immediate and high urgency are never held for quiet hours and never left to a
person's preference; a person is always told on some channel they have, even if not one the policy lists.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from services.routing.policy.vocabulary import PolicyPart, Urgency, quoted_time
from shared.contracts.parent_message import AsWritten, ParentMessage, ParentWords

ChannelName = Literal["push", "email", "sms"]
URGENT = frozenset({Urgency.immediate, Urgency.high})


def _default_channels() -> dict[Urgency, tuple[ChannelName, ...]]:
    return {
        Urgency.immediate: ("push", "sms", "email"),
        Urgency.high: ("push", "sms", "email"),
        Urgency.medium: ("push", "email"),
        Urgency.low: ("push", "email"),
    }


class QuietHours(PolicyPart):
    """When non-urgent messages wait (e.g. 21:00 to 07:00): they go at the end, never dropped."""

    starts: time
    ends: time

    @field_validator("starts", "ends", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        return quoted_time(value)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.starts == self.ends:
            raise ValueError("quiet hours must start and end at different times")
        return self


class EmailWords(PolicyPart):
    subject: ParentWords
    body: ParentWords


class PushWords(PolicyPart):
    title: ParentWords
    body: ParentWords


# A longest reference (SG-<year>-<8>) and the SMS segment: a parent's SMS must fit once filled in.
LONGEST_REFERENCE = "SG-2026-XXXXXXXX"
SMS_SEGMENT = 160


class ParentMessageTemplate(PolicyPart):
    """What parents or carers are told, per channel: placeholders `{school_name}`, `{reference}`, `{contact}` only."""

    contact: AsWritten = Field(description="how a parent reaches the school, quoted by `{contact}`")
    email: EmailWords
    sms: ParentWords
    push: PushWords

    def for_school(self, school_name: str) -> ParentMessage:
        """The words as a notification request carries them."""
        return ParentMessage(
            school_name=school_name,
            contact=self.contact,
            email_subject=self.email.subject,
            email_body=self.email.body,
            sms=self.sms,
            push_title=self.push.title,
            push_body=self.push.body,
        )


class NotificationPlan(PolicyPart):
    """Which channels each urgency goes by, quiet hours, and the urgencies where people choose for themselves."""

    channels: dict[Urgency, tuple[ChannelName, ...]] = Field(default_factory=_default_channels)
    quiet_hours: QuietHours | None = None
    personal_choice: tuple[Urgency, ...] = Field(
        default=(), description="urgencies for which a person's own `prefer` list replaces the policy's channels"
    )
    section: str = Field(default="", description="the policy section this comes from")
    parent_message: ParentMessageTemplate | None = Field(
        default=None, description="the school's words to parents or carers; none: Safeguard cannot message them"
    )

    @model_validator(mode="after")
    def _coherent(self) -> NotificationPlan:
        missing = [u.value for u in Urgency if not self.channels.get(u)]
        if missing:
            raise ValueError(f"notifications.channels must list at least one channel for {missing}")
        urgent = sorted(u.value for u in URGENT & set(self.personal_choice))
        if urgent:
            raise ValueError(f"personal_choice cannot cover {urgent}: urgent messages go by every listed channel")
        return self

    def wanted(self, urgency: str, *, prefer: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The channels for `urgency`: the person's own choice where the policy allows it, else the policy's."""
        level = Urgency(urgency)
        if prefer and level in self.personal_choice:
            return prefer
        return self.channels[level]

    def quiet_until(
        self, now: datetime, *, urgency: str, timezone: str, own: QuietHours | None = None
    ) -> datetime | None:
        """When a message of `urgency` sent at `now` may go, if it must wait for quiet hours to end; else None.

        `own`: the recipient's own quiet hours, which replace the school's for them (urgent messages never wait).
        """
        hours = own or self.quiet_hours
        if hours is None or Urgency(urgency) in URGENT:
            return None
        local = now.astimezone(ZoneInfo(timezone))
        starts, ends, clock = hours.starts, hours.ends, local.time()
        overnight = starts > ends
        quiet = (clock >= starts or clock < ends) if overnight else (starts <= clock < ends)
        if not quiet:
            return None
        day = local.date() + timedelta(days=1) if overnight and clock >= starts else local.date()
        return datetime.combine(day, ends, tzinfo=local.tzinfo).astimezone(now.tzinfo)


DEFAULT_PLAN = NotificationPlan()
