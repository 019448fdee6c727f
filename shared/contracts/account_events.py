"""Changes to who may sign in to the console: accounts made, disabled, their second factor reset, devices.

One frozen class per version. The actor is the person who made the change (proved by their console session),
so the audit ledger says who gave or took away access, and when. Never a password or a TOTP secret.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Event

AccountChange = Literal["created", "disabled", "enabled", "second_factor_reset", "push_subscribed", "push_unsubscribed"]


class AccountChangedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(min_length=1, max_length=100)
    change: AccountChange = Field(description="what happened to the account (or to one of its devices)")
    username: str = Field(min_length=1, max_length=320)
    person_id: str = Field(min_length=1, max_length=100, description="the person the account is for")
    role: str = Field(min_length=1, max_length=80, description="the account's console role")
    via: str = Field(min_length=1, max_length=80, description="the tool that made the change, e.g. console")


class AccountChanged(Event[AccountChangedPayload]):
    """A console account was created, disabled, enabled, had its second factor reset, or a device (un)subscribed."""

    TYPE: ClassVar[str] = "account.changed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "account"
