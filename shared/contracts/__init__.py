"""Event contracts: the envelope, the concern shape and every event class."""

from shared.contracts import case_events as case_events
from shared.contracts import events as events
from shared.contracts.envelope import Actor, Event, EventRejected, parse_event, registry, utc_now

__all__ = ["Actor", "Event", "EventRejected", "events", "parse_event", "registry", "utc_now"]
