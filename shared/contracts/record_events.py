"""Reads and erasures of the confidential record: who looked at what, when and why; which keys were shredded."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Event

RecordKind = Literal["case", "school_record"]


class RecordViewedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_kind: RecordKind = Field(description="a case, or a school's whole record")
    record_id: str = Field(min_length=1, max_length=200, description="the case id, or the school id for its record")
    view: str = Field(
        min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9_]*$", description="how it was read, e.g. export"
    )
    via: str = Field(min_length=1, max_length=80, description="the tool that showed it, e.g. safeguard-cli")
    reason: str = Field(min_length=1, max_length=2_000, description="the reason the viewer stated")
    break_glass: bool = Field(
        default=False, description="access outside the viewer's usual need to know, claimed as an emergency"
    )


class RecordViewed(Event[RecordViewedPayload]):
    """Someone viewed a confidential record; the actor is the viewer and `occurred_at` when they viewed it."""

    TYPE: ClassVar[str] = "record.viewed"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "record"


ShredScope = Literal["person", "reporter", "case", "school"]
ShredBasis = Literal["retention_ended", "erasure_request", "other"]


class KeyShreddedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: ShredScope = Field(description="whose key: a person's, a reporter's, a case's, or the whole school's")
    subject: str = Field(
        max_length=200, description="the person id, reporter pseudonym or case id; empty for the whole school"
    )
    key_ids: list[str] = Field(
        max_length=50, description="the data keys destroyed (empty for a whole school: see keys_destroyed)"
    )
    keys_destroyed: int = Field(ge=1, description="how many data keys were destroyed, the school's own among them")
    basis: ShredBasis = Field(description="why, as a word: never the content of what was erased")


class KeyShredded(Event[KeyShreddedPayload]):
    """Data keys were destroyed (crypto-shredding): the fields they sealed now read as erased; every hash still holds.

    Recorded by audit itself in the same transaction that deletes the keys; the actor is whoever asked for it.
    """

    TYPE: ClassVar[str] = "key.shredded"
    VERSION: ClassVar[int] = 1
    AGGREGATE: ClassVar[str] = "key"
