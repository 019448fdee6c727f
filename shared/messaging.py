"""The faststream NATS broker every service uses, and the JetStream streams it declares."""

from __future__ import annotations

import logging
from typing import Any

from faststream import BaseMiddleware
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.security import SASLPlaintext
from nats.aio.client import DEFAULT_INBOX_PREFIX
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.identities import inbox_prefix
from shared.nats_fetch import raise_documented_timeouts
from shared.settings import Settings
from shared.subjects import Subjects
from shared.tracing import exporting

log = logging.getLogger(__name__)


# An empty pull fetch must time out with nats' documented error, or faststream's pull loop crashes, logs an ERROR
# and drops the batch it had fetched until ack_wait redelivers it (the 30/60/90 s latencies seen under load).
raise_documented_timeouts()


def make_broker(settings: Settings, *, service: str) -> NatsBroker:
    """A broker for `service`, with trace context carried in message headers, as its own NATS identity."""
    credentials = settings.nats_credentials()
    identity: dict[str, Any] = {"inbox_prefix": DEFAULT_INBOX_PREFIX}
    if credentials is not None:
        user, password = credentials
        # Replies (pulled events, publish acks) come to an inbox only this identity may subscribe to.
        identity = {"security": SASLPlaintext(username=user, password=password), "inbox_prefix": inbox_prefix(user)}
    return NatsBroker(
        settings.nats_url,
        **identity,
        name=f"safeguard-{service}",
        middlewares=[_telemetry()],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=15.0,
        logger=logging.getLogger(f"safeguard.{service}.broker"),
        log_level=logging.DEBUG,
    )


def _telemetry() -> Any:
    """faststream's telemetry middleware, except around a pulled batch of events when no span is exported.

    Its span and metrics for a batch would be built only to be dropped; each event carries its trace in its own
    envelope. Commands and publishes keep it: a request still carries the caller's trace in its headers."""
    traced = NatsTelemetryMiddleware()

    def middleware(msg: Any, /, *, context: Any) -> BaseMiddleware[Any, Any]:
        if isinstance(msg, list) and not exporting():
            return BaseMiddleware(msg, context=context)
        return traced(msg, context=context)

    return middleware


def pull_inbox_prefix(settings: Settings) -> bytes:
    """The inbox prefix a pull subscriber must fetch into: faststream defaults every subscriber to `_INBOX.`."""
    credentials = settings.nats_credentials()
    return (inbox_prefix(credentials[0]).encode() if credentials else DEFAULT_INBOX_PREFIX) + b"."


def stream_configs(settings: Settings) -> list[StreamConfig]:
    """The durable event stream and its dead-letter stream, as the design asks."""
    subjects = Subjects.from_settings(settings)
    common: dict[str, Any] = {
        "storage": StorageType.FILE,
        "retention": RetentionPolicy.LIMITS,
        "discard": DiscardPolicy.NEW,
        "deny_delete": True,
        "deny_purge": True,
        "num_replicas": settings.stream_replicas,
        "duplicate_window": settings.duplicate_window_seconds,
    }
    return [
        StreamConfig(
            name=subjects.stream,
            description="Safeguard domain events",
            subjects=[subjects.all_events],
            **common,
        ),
        StreamConfig(
            name=subjects.dead_letter_stream,
            description="Safeguard events a consumer could not process, with the reason",
            subjects=[subjects.all_dead_letters],
            **common,
        ),
        # Audit's signed tree heads (issue 11): kept apart so a reader can follow them alone.
        StreamConfig(
            name=subjects.checkpoint_stream,
            description="Safeguard audit: signed Merkle tree heads over each school's ledger",
            subjects=[subjects.all_checkpoints],
            **common,
        ),
    ]


async def ensure_streams(js: JetStreamContext, settings: Settings) -> None:
    """Create the streams, or bring an existing stream's settings up to date."""
    for config in stream_configs(settings):
        assert config.name is not None
        try:
            existing = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
        else:
            # A service's identity may look at the streams but not change them: update only what differs.
            if not _settled(existing.config, wanted=config):
                await js.update_stream(config)


def _settled(existing: StreamConfig, *, wanted: StreamConfig) -> bool:
    """Whether the stream already has every setting we ask for."""
    have = existing.as_dict()
    return all(have.get(key) == value for key, value in wanted.as_dict().items())


def jetstream(broker: NatsBroker) -> JetStreamContext:
    """The raw JetStream context of a connected broker."""
    return broker.config.connection_state.stream
