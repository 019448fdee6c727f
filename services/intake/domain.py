"""Pure intake logic: reference numbers and turning a validated report into its event."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from shared.contracts.concern import Channel, ConcernReceivedPayload, ConcernReport
from shared.contracts.envelope import Actor
from shared.contracts.events import ConcernReceived, IntakeQuarantined, IntakeQuarantinedPayload

# Crockford's base32 without I, L, O, U: easy to read aloud over the phone.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference(*, received_at: datetime, token: str | None = None) -> str:
    """A reference like `SG-2026-7K3F9QXM`: the year, then 8 random characters (40 bits)."""
    # One read of the system's random source: each byte's low 5 bits pick a character (256 is a multiple of 32,
    # so every character is equally likely), as secrets.choice would, without its eight reads.
    token = token or "".join(_REFERENCE_ALPHABET[byte & 31] for byte in secrets.token_bytes(8))
    return f"SG-{received_at:%Y}-{token}"


def reporter_actor(report: ConcernReport, *, channel: Channel) -> Actor:
    """The actor of a concern.received event: the reporter, or the channel for an anonymous report."""
    reporter = report.reporter
    if reporter.anonymous or reporter.role is None:
        return Actor(id=f"anonymous:{channel.value}", role="anonymous")
    return Actor(id=reporter.person_id or reporter.contact or f"unnamed:{channel.value}", role=reporter.role.value)


def concern_received(
    report: ConcernReport,
    *,
    school_id: str,
    reference: str,
    channel: Channel,
    raw_input_id: uuid.UUID,
    received_at: datetime,
    traceparent: str | None,
) -> ConcernReceived:
    """The event announcing an accepted concern."""
    payload = ConcernReceivedPayload(
        **report.model_dump(),
        reference=reference,
        channel=channel,
        raw_input_id=str(raw_input_id),
        received_at=received_at,
    )
    return ConcernReceived.new(
        payload,
        school_id=school_id,
        aggregate_id=reference,
        actor=reporter_actor(report, channel=channel),
        occurred_at=received_at,
        traceparent=traceparent,
    )


INTAKE = Actor(id="intake", role="service")


def quarantined(
    raw_input_id: uuid.UUID, *, school_id: str, channel: Channel, code: str, received_at: datetime
) -> IntakeQuarantined:
    """The event announcing a quarantined raw input: its id, channel and reason code, never its content."""
    payload = IntakeQuarantinedPayload(
        raw_input_id=str(raw_input_id), channel=channel.value, reason_code=code, received_at=received_at
    )
    return IntakeQuarantined.new(
        payload, school_id=school_id, aggregate_id=str(raw_input_id), actor=INTAKE, occurred_at=received_at
    )
