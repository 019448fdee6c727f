"""What the consumer edge refuses before any handler sees an event: things that cannot be true.

NATS does not tell a receiver who published a message, so the publisher is established in two halves: the
server lets only the service that owns an event type publish on its subjects (shared/identities.py renders
those permissions), and here the edge checks that the subject an event arrived on is the one its type and
school belong on. An event that passes both came from the service that may publish it. An event type no
service may publish, a subject naming another school or type than the body, or a school without an adopted
policy is parked with its reason (shared/consumer.py) and never acted on or recorded as genuine.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.contracts.envelope import Event
from shared.identities import PUBLISHES

log = logging.getLogger(__name__)

KnownSchool = Callable[[str], bool]


@functools.lru_cache(maxsize=512)  # a handful of types in practice; bounded against made-up ones
def publisher_of(event_type: str) -> str | None:
    """The service that may publish `event_type` (from the permission matrix), or None when none may."""
    for service, patterns in PUBLISHES.items():
        # `*` stands for one event name; event types have exactly one dot, so fnmatch's `*` cannot overreach.
        if any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns):
            return service
    return None


def refusal(subject: str, event: Event[Any], *, root: str, known_school: KnownSchool | None = None) -> str | None:
    """Why `event`, received on `subject`, must not be acted on; None when it may be."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[0] != root:
        return f"subject {subject} is not <{root}>.<school>.<aggregate>.<event>"
    _, school_id, aggregate, name = parts
    if school_id != event.school_id:
        return f"the subject names school {school_id} but the event names school {event.school_id}"
    if f"{aggregate}.{name}" != event.type:
        return f"the subject carries {aggregate}.{name} but the event is {event.type}"
    if publisher_of(event.type) is None:
        return f"no service may publish {event.type}"
    if known_school is not None and not known_school(event.school_id):
        return f"school {event.school_id} has no adopted policy"
    return None


class PolicyFolderSchools:
    """The schools a deployment knows: one `<school_id>.yaml` per school in the policy folder.

    Audit and notifications use this (routing knows the policies it adopted). The folder is listed again when
    a school is missing, so a school added while the service runs is known without a restart.
    """

    def __init__(self, folder: str | Path) -> None:
        self._folder = Path(folder)
        self._known: frozenset[str] = frozenset()

    def _list(self) -> frozenset[str]:
        try:
            return frozenset(path.stem for path in self._folder.glob("*.yaml"))
        except OSError:
            log.exception("the policy folder cannot be listed")
            return self._known

    def __call__(self, school_id: str) -> bool:
        if school_id not in self._known:
            self._known = self._list()
        return school_id in self._known


class Admission:
    """The edge's checks for one service; `known_school` is set by the service (policy folder by default)."""

    def __init__(self, *, root: str, known_school: KnownSchool | None = None) -> None:
        self.root = root
        self.known_school = known_school

    def refusal(self, subject: str, event: Event[Any]) -> str | None:
        """Why this event must be parked, or None."""
        return refusal(subject, event, root=self.root, known_school=self.known_school)
