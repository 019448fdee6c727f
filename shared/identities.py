"""Who may say what on the bus: each service's NATS identity and its publish/subscribe rights, as data.

Rights are derived from `Subjects`, so a test run's own subject root and stream names get the same
matrix as production. The matrix is rendered into a nats-server configuration (`render_server_config`)
and documented in docs/security.md.

Services read events through durable pull consumers, so what a service can *read* off the stream is
decided by which `$JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>` it may publish to (nats-py names
the filter in that subject), not by subscribe rights. Each service gets its own inbox prefix, so no
service can listen to the replies (pulled messages, publish acks) meant for another.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from shared.subjects import (
    AUDIT_LEDGER,
    CONSOLE_READ_MODEL,
    INTAKE_RECEIPTS,
    NOTIFICATIONS_REQUESTS,
    ROUTING_ACKNOWLEDGEMENTS,
    ROUTING_BREAK_GLASS,
    ROUTING_CONCERNS,
    ROUTING_DEAD_LETTERS,
    ROUTING_FAILURES,
    ROUTING_QUARANTINES,
    Subjects,
)

SERVICE_NAMES: tuple[str, ...] = ("intake", "routing", "notifications", "audit", "console")
# Holds every right; only the launcher (or a deployment's setup job) uses it, to declare the streams.
ADMIN = "admin"
# A person at a terminal (the `safeguard case …` CLI): may send case commands and nothing else.
OPERATOR = "operator"
ACCOUNT = "SAFEGUARD"

# Event types each service may publish (`<aggregate>.<event>`; `*` stands for any one event).
PUBLISHES: dict[str, tuple[str, ...]] = {
    "intake": ("concern.received", "intake.quarantined"),
    "routing": ("case.*", "deadline.*", "notification.requested", "policy.*", "debrief.*"),
    "notifications": (
        "notification.sent",
        "notification.delivered",
        "notification.failed",
        "notification.acknowledged",
    ),
    # Reads of the record: audit's command line (replay, export) and the console's case view; crypto-shredding.
    "audit": ("record.viewed", "key.shredded"),
    "console": ("record.viewed", "account.changed"),
}
# Every service announces the dead letters it parks (count and reason code, never the content).
PUBLISHES = {service: (*types, "ops.dead_lettered") for service, types in PUBLISHES.items()}
# Who sends commands or queries to which service as a requester (replies come to the sender's own inbox).
COMMAND_SENDERS: dict[str, tuple[str, ...]] = {"console": ("routing", "audit", "notifications")}
# Services that answer requests on their own command subjects.
RESPONDERS: tuple[str, ...] = ("routing", "audit", "notifications")


@dataclass(frozen=True)
class PullConsumer:
    """A durable pull consumer a service reads the event stream through."""

    durable: str
    filter_subject: str


@dataclass(frozen=True)
class Identity:
    """One NATS user: what it may publish and subscribe to."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Answering requests (routing's case commands) needs publishing to the requester's one-off inbox.
    allow_responses: bool = False

    def permissions(self) -> dict[str, object]:
        """The nats-server `permissions` block of this user."""
        block: dict[str, object] = {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.allow_responses:
            block["allow_responses"] = True
        return block


def inbox_prefix(name: str) -> str:
    """The reply-subject prefix identity `name` connects with (`_INBOX.<name>`)."""
    return f"_INBOX.{name}"


def consumers(subjects: Subjects) -> dict[str, tuple[PullConsumer, ...]]:
    """The durable consumers each service owns, with the only filter it may create them with."""
    return {
        "intake": (PullConsumer(INTAKE_RECEIPTS, subjects.of_type("case.*")),),
        "routing": (
            PullConsumer(ROUTING_CONCERNS, subjects.of_type("concern.received")),
            PullConsumer(ROUTING_ACKNOWLEDGEMENTS, subjects.of_type("notification.acknowledged")),
            PullConsumer(ROUTING_FAILURES, subjects.of_type("notification.failed")),
            PullConsumer(ROUTING_DEAD_LETTERS, subjects.of_type("ops.dead_lettered")),
            PullConsumer(ROUTING_QUARANTINES, subjects.of_type("intake.quarantined")),
            PullConsumer(ROUTING_BREAK_GLASS, subjects.of_type("record.viewed")),
        ),
        "notifications": (PullConsumer(NOTIFICATIONS_REQUESTS, subjects.of_type("notification.requested")),),
        "audit": (PullConsumer(AUDIT_LEDGER, subjects.all_events),),
        # The console's read model folds every event (cases, concerns, notifications) into its own tables.
        "console": (PullConsumer(CONSOLE_READ_MODEL, subjects.all_events),),
    }


def consumer_rights(subjects: Subjects, consumer: PullConsumer) -> tuple[str, ...]:
    """Create (with its own filter only), look up, pull from and acknowledge one durable; never delete it."""
    api = f"$JS.API.CONSUMER.%s.{subjects.stream}.{consumer.durable}"
    return (
        f"{api % 'CREATE'}.{consumer.filter_subject}",
        api % "INFO",
        api % "MSG.NEXT",
        f"$JS.ACK.{subjects.stream}.{consumer.durable}.>",
        # Where this consumer parks an event it cannot process.
        subjects.dead_letter(consumer.durable),
    )


def service_identity(subjects: Subjects, *, service: str) -> Identity:
    """The least rights `service` needs to do its job."""
    events = tuple(subjects.of_type(event_type) for event_type in PUBLISHES[service])
    if service == "audit":
        # Signed tree heads go on their own stream, apart from the events they vouch for.
        events += (subjects.checkpoint(school_id="*"),)
    streams = (subjects.stream, subjects.dead_letter_stream, subjects.checkpoint_stream)
    stream_info = tuple(f"$JS.API.STREAM.INFO.{name}" for name in streams)
    reading = tuple(right for consumer in consumers(subjects)[service] for right in consumer_rights(subjects, consumer))
    events += tuple(subjects.command(target, ">") for target in COMMAND_SENDERS.get(service, ()))
    subscribe = [f"{inbox_prefix(service)}.>"]
    if service in RESPONDERS:
        subscribe.append(subjects.command(service, ">"))
    if service == "audit":
        # Audit sees everything: live events and dead letters, never another service's inbox.
        subscribe += [subjects.all_events, subjects.all_dead_letters]
    return Identity(
        name=service,
        publish=events + stream_info + reading,
        subscribe=tuple(subscribe),
        allow_responses=service in RESPONDERS,
    )


def identities(subjects: Subjects) -> dict[str, Identity]:
    """Every identity of a deployment: the services, the operator, and the admin."""
    matrix = {service: service_identity(subjects, service=service) for service in SERVICE_NAMES}
    matrix[OPERATOR] = Identity(
        name=OPERATOR,
        publish=(subjects.command("routing", ">"),),
        subscribe=(f"{inbox_prefix(OPERATOR)}.>",),
    )
    matrix[ADMIN] = Identity(name=ADMIN, publish=(">",), subscribe=(">",))
    return matrix


def generate_passwords(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A fresh random password (256 bits) per identity."""
    return {name: secrets.token_urlsafe(32) for name in names}


def render_server_config(matrix: Mapping[str, Identity], *, passwords: Mapping[str, str]) -> str:
    """A nats-server configuration: one account with JetStream, one user per identity, no anonymous access.

    JSON is valid nats-server configuration syntax, and `json.dumps` quotes `$JS…` subjects safely.
    """
    users = [
        {"user": identity.name, "password": passwords[identity.name], "permissions": identity.permissions()}
        for identity in matrix.values()
    ]
    config = {"accounts": {ACCOUNT: {"jetstream": "enabled", "users": users}}}
    return json.dumps(config, indent=2) + "\n"
