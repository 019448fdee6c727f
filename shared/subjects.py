"""The one place subjects, stream names and durable consumer names are spelled.

Subjects carry the school so a trust can split streams or consumers by school later:
`<root>.<school_id>.<aggregate>.<event>`, e.g. `sg.st-marks.concern.received`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings


@dataclass(frozen=True)
class Subjects:
    """Subject and stream names for one deployment (root and stream name come from settings)."""

    root: str
    stream: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Subjects:
        return cls(root=settings.subject_root, stream=settings.stream_name)

    def event(self, *, school_id: str, event_type: str) -> str:
        """Subject for one event: `concern.received` at st-marks -> `sg.st-marks.concern.received`."""
        aggregate, _, name = event_type.partition(".")
        if not aggregate or not name or "." in name:
            raise ValueError(f"event type must be '<aggregate>.<event>', got {event_type!r}")
        return f"{self.root}.{school_id}.{aggregate}.{name}"

    def of_type(self, event_type: str) -> str:
        """Filter for one event type at every school."""
        return self.event(school_id="*", event_type=event_type)

    @property
    def all_events(self) -> str:
        """Filter for every domain event (what audit consumes)."""
        return f"{self.root}.>"

    def origin(self, subject: str) -> tuple[str, str] | None:
        """(school_id, event_type) of an event subject, or None when the subject is not one."""
        parts = subject.split(".")
        if len(parts) != 4 or parts[0] != self.root:
            return None
        return parts[1], f"{parts[2]}.{parts[3]}"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream}_DEAD"

    def dead_letter(self, consumer: str) -> str:
        """Where a consumer parks an event it cannot process."""
        return f"{self.root}-dead.{consumer}"

    @property
    def all_dead_letters(self) -> str:
        return f"{self.root}-dead.>"

    # Audit's signed tree heads go on a stream of their own, outside the domain events they vouch for.
    @property
    def checkpoint_stream(self) -> str:
        return f"{self.stream}_AUDIT"

    def checkpoint(self, *, school_id: str) -> str:
        """Where audit publishes a school's signed tree heads."""
        return f"{self.root}-audit.{school_id}.ledger.checkpointed"

    @property
    def all_checkpoints(self) -> str:
        return f"{self.root}-audit.>"

    def command(self, service: str, command: str) -> str:
        """Request/reply subject for a command to the service owning the aggregate (not on the stream)."""
        return f"{self.root}-cmd.{service}.{command}"

    @property
    def audit_query(self) -> str:
        """Where the console asks audit to replay, verify or export a school's record (request/reply)."""
        return self.command("audit", "query")

    @property
    def audit_export(self) -> str:
        """Where the audit instance that wrote an export bundle hands it out, a chunk at a time."""
        return self.command("audit", "export")

    @property
    def notifications_push(self) -> str:
        """Where the console asks notifications to subscribe or unsubscribe a person's browser (request/reply)."""
        return self.command("notifications", "push")


# Durable consumer names: one per service role, shared by all instances of that service (pull consumers).
INTAKE_RECEIPTS = "intake-receipts"  # case events, so a reporter's status page follows the case
ROUTING_CONCERNS = "routing-concerns"
ROUTING_ACKNOWLEDGEMENTS = "routing-acknowledgements"
ROUTING_FAILURES = "routing-notification-failures"
ROUTING_DEAD_LETTERS = "routing-dead-letters"
ROUTING_QUARANTINES = "routing-quarantines"
NOTIFICATIONS_REQUESTS = "notifications-requests"
AUDIT_LEDGER = "audit-ledger"
CONSOLE_READ_MODEL = "console-read-model"
ROUTING_BREAK_GLASS = "routing-break-glass"  # record.viewed: a break-glass view alerts the school's DSLs
