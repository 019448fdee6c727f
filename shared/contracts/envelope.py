"""The event envelope every service publishes, and the registry that parses it back.

Each event type is one frozen class per version. A published class is never edited: a breaking change is a
new class with `version` one higher plus an upcaster registered here.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from shared.tracing import continuing_traceparent
from shared.validation import describe

PayloadT = TypeVar("PayloadT", bound=BaseModel)


class EventRejected(ValueError):
    """An event that cannot be processed: unknown type or version, or a malformed body."""

    def __init__(self, reason: str, *, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class Actor(BaseModel):
    """Who caused the event: a person (id + role), a service, or the channel of an anonymous report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=80)


_IDS_A_READ = 256
_ids: list[uuid.UUID] = []  # made ahead; list.pop is atomic, so two threads never take the same one


def _forget_ids() -> None:
    """A forked child must not hand out the ids its parent has still to hand out."""
    _ids.clear()


os.register_at_fork(after_in_child=_forget_ids)


def new_event_id() -> uuid.UUID:
    """A random (version 4) UUID, as `uuid.uuid4()` makes, from the OS's random bytes read 4 KiB at a time rather
    than 16 bytes a system call: every event built needs one."""
    while True:
        try:
            return _ids.pop()
        except IndexError:
            random = os.urandom(16 * _IDS_A_READ)
            _ids.extend(uuid.UUID(bytes=random[i : i + 16], version=4) for i in range(0, len(random), 16))


def utc_now() -> datetime:
    """The current time in UTC (for the edges; pure code takes time as an argument)."""
    return datetime.now(UTC)


class Event(BaseModel, Generic[PayloadT]):
    """The envelope: identity, school, aggregate, time, actor, causality and trace around a typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    AGGREGATE: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=new_event_id)
    type: str
    version: int
    school_id: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")
    aggregate_id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime
    recorded_at: datetime = Field(default_factory=utc_now)
    actor: Actor
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    traceparent: str | None = Field(default=None, max_length=55)
    payload: PayloadT

    @model_validator(mode="after")
    def _type_matches_class(self) -> Event[PayloadT]:
        expected = (getattr(type(self), "TYPE", None), getattr(type(self), "VERSION", None))
        if expected[0] is not None and (self.type, self.version) != expected:
            raise ValueError(f"{type(self).__name__} carries type {expected[0]} v{expected[1]}")
        return self

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            _REGISTRY.register(cls)

    @classmethod
    def new(
        cls,
        payload: Any,
        *,
        school_id: str,
        aggregate_id: str,
        actor: Actor,
        occurred_at: datetime,
        cause: Event[Any] | None = None,
        traceparent: str | None = None,
        event_id: uuid.UUID | None = None,
        continued: bool = False,
    ) -> Any:
        """Build an event of this class; with `cause` it inherits correlation and trace (the active span's if in it).

        With `continued`, `traceparent` is already the trace parent to carry: `continuing_traceparent(
        cause.traceparent)` worked out once by a caller building several events from one cause, as it is the same
        for each of them."""
        new_id = event_id or new_event_id()
        if not continued:
            traceparent = continuing_traceparent(traceparent or (cause.traceparent if cause else None))
        return cls(
            event_id=new_id,
            type=cls.TYPE,
            version=cls.VERSION,
            school_id=school_id,
            aggregate_id=aggregate_id,
            occurred_at=occurred_at,
            actor=actor,
            correlation_id=cause.correlation_id if cause else new_id,
            causation_id=cause.event_id if cause else None,
            traceparent=traceparent,
            payload=payload,
        )

    def to_json(self) -> bytes:
        """The wire form: UTF-8 JSON."""
        return self.model_dump_json().encode()


def in_current_span(events: Iterable[Event[Any]]) -> list[Event[Any]]:
    """The events, each naming the active span as its trace parent when that span is in the event's trace."""
    return [
        event
        if (traceparent := continuing_traceparent(event.traceparent)) == event.traceparent
        else event.model_copy(update={"traceparent": traceparent})
        for event in events
    ]


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventRegistry:
    """Maps (type, version) to the class that parses it; upcasts old versions to the current one."""

    def __init__(self, *, modules: tuple[str, ...] = ()) -> None:
        self._classes: dict[tuple[str, int], type[Event[Any]]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._modules = modules
        self._loaded = not modules

    def _load(self) -> None:
        """Import the modules that define the event classes (they register themselves on import)."""
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def register(self, cls: type[Event[Any]]) -> None:
        key = (cls.TYPE, cls.VERSION)
        existing = self._classes.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise RuntimeError(f"two classes claim event {key}: {existing} and {cls}")
        self._classes[key] = cls

    def register_upcaster(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Register a function turning `from_version` of `event_type` into `from_version + 1`."""
        self._upcasters[(event_type, from_version)] = upcaster

    def superseded(self, event_type: str, version: int) -> bool:
        """Whether this version is upcast to a newer one when read (so nobody publishes it any more)."""
        self._load()
        return (event_type, version) in self._upcasters

    def classes(self) -> dict[tuple[str, int], type[Event[Any]]]:
        self._load()
        return dict(self._classes)

    def parse(self, raw: bytes | str | dict[str, Any]) -> Event[Any]:
        """Parse a wire event into its class, or raise EventRejected with a clear reason."""
        self._load()
        if not isinstance(raw, dict) and (event := self._parse_current(raw)) is not None:
            return event
        if isinstance(raw, dict):
            document = raw
        else:
            try:
                document = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise EventRejected(f"event body is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise EventRejected("event body is not a JSON object")
        event_id = str(document.get("event_id")) if document.get("event_id") else None
        event_type, version = document.get("type"), document.get("version")
        if not isinstance(event_type, str) or not isinstance(version, int):
            raise EventRejected("event has no string 'type' and integer 'version'", event_id=event_id)
        while (event_type, version) in self._upcasters:
            document = self._upcasters[(event_type, version)](document)
            version = document["version"]
        cls = self._classes.get((event_type, version))
        if cls is None:
            raise EventRejected(f"unknown event {event_type} v{version}", event_id=event_id)
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise EventRejected(f"malformed {event_type}: {describe(exc, limit=10)}", event_id=event_id) from exc

    def _parse_current(self, raw: bytes | str) -> Event[Any] | None:
        """The common case in one pass over the JSON text, without building a dictionary first: a current version,
        valid. None for anything else (an old version to upcast, or a body to reject), which `parse` then reads the
        slow way so that a rejection names its reason."""
        key = _head_as_written(raw)
        if key is None:
            try:
                head = _Head.model_validate_json(raw)
            except ValidationError:
                return None
            key = (head.type, head.version)
        cls = self._classes.get(key)
        if cls is None or key in self._upcasters:
            return None
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None


# How this codebase writes an event (model_dump_json: event_id, type, version first): read without parsing it all.
# A guess only: the class then validates the whole event, its own type and version included.
_WRITTEN_HEAD = re.compile(r'^\{"event_id":"[0-9a-f-]{36}","type":"([a-z_.]{1,80})","version":([0-9]{1,6}),')
_WRITTEN_HEAD_BYTES = re.compile(_WRITTEN_HEAD.pattern.encode())


def _head_as_written(raw: bytes | str) -> tuple[str, int] | None:
    """(type, version) from the start of an event written as `Event.to_json` writes it; None for any other shape."""
    found = _WRITTEN_HEAD_BYTES.match(raw) if isinstance(raw, bytes) else _WRITTEN_HEAD.match(raw)
    if found is None:
        return None
    event_type, version = found.groups()
    return (event_type.decode() if isinstance(event_type, bytes) else event_type), int(version)


def json_text(event: Event[Any], received: bytes | None = None) -> str:
    """The event's JSON text as `Event.to_json` writes it: `received` (the bytes it was parsed from) when they begin as
    that writes this type and version (not an older version, upcast), so the text is not written a second time."""
    if received is not None and _head_as_written(received) == (event.type, event.version):
        return received.decode()
    return event.model_dump_json()


class _Head(BaseModel):
    """An event's type and version, read from its JSON text (nothing else is kept)."""

    model_config = ConfigDict(extra="ignore")

    type: StrictStr
    version: StrictInt


_REGISTRY = EventRegistry(
    modules=(
        "shared.contracts.events",
        "shared.contracts.case_events",
        "shared.contracts.record_events",
        "shared.contracts.account_events",
    )
)


def registry() -> EventRegistry:
    """The process-wide registry of event classes."""
    return _REGISTRY


def parse_event(raw: bytes | str | dict[str, Any]) -> Event[Any]:
    """Parse a wire event (see EventRegistry.parse)."""
    return _REGISTRY.parse(raw)
