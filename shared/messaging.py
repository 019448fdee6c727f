"""The faststream NATS broker every service uses, and the JetStream streams it declares."""

from __future__ import annotations

import logging
from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.nats_fetch import raise_documented_timeouts
from shared.settings import Settings
from shared.subjects import Subjects

log = logging.getLogger(__name__)


def make_broker(settings: Settings, *, service: str) -> NatsBroker:
    """A broker for `service`, with trace context carried in message headers."""
    raise_documented_timeouts()
    return NatsBroker(
        settings.nats_url,
        name=f"safeguard-{service}",
        middlewares=[NatsTelemetryMiddleware()],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=15.0,
        logger=logging.getLogger(f"safeguard.{service}.broker"),
        log_level=logging.DEBUG,
    )


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
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
        else:
            await js.update_stream(config)


def jetstream(broker: NatsBroker) -> JetStreamContext:
    """The raw JetStream context of a connected broker."""
    return broker.config.connection_state.stream
