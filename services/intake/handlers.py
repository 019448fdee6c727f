"""Intake's use case: keep the raw input, validate, accept (concern + outbox in one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError

from services.intake.domain import concern_received, new_reference
from services.intake.store import SqlIntakeStore
from shared.contracts.concern import Channel, ConcernReport
from shared.tracing import current_traceparent
from shared.unit_of_work import UnitOfWork

REFERENCE_ATTEMPTS = 5


@dataclass(frozen=True)
class Accepted:
    reference: str
    raw_input_id: uuid.UUID
    repeated: bool = False


@dataclass(frozen=True)
class Rejected:
    raw_input_id: uuid.UUID
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Intake:
    """Everything receiving a concern needs; one per process, shared by every channel."""

    uow: UnitOfWork
    store: SqlIntakeStore
    clock: Callable[[], datetime]

    async def receive(
        self,
        body: bytes,
        *,
        school_id: str,
        channel: Channel,
        content_type: str,
        parse: Callable[[bytes], ConcernReport],
        idempotency_key: str | None = None,
    ) -> Accepted | Rejected:
        """Keep `body` as received, then parse it; nothing is lost whether it is accepted or rejected."""
        received_at = self.clock()
        async with self.uow.begin() as work:
            raw = await self.store.keep_raw(
                work.session,
                school_id=school_id,
                channel=channel.value,
                content_type=content_type,
                body=body,
                received_at=received_at,
                idempotency_key=idempotency_key,
            )
        if raw.status == "accepted" and raw.reference:
            return Accepted(raw.reference, raw.raw_input_id, repeated=True)
        if raw.status == "rejected":
            return Rejected(raw.raw_input_id, raw.rejection_reason or "rejected earlier")
        try:
            report = parse(body)
        except ValidationError as invalid:
            errors = _field_errors(invalid)
            reason = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            await self._reject(raw.raw_input_id, reason)
            return Rejected(raw.raw_input_id, reason, errors)
        except ValueError as invalid:
            await self._reject(raw.raw_input_id, str(invalid))
            return Rejected(raw.raw_input_id, str(invalid))
        for _ in range(REFERENCE_ATTEMPTS):  # a fresh reference if a random one is already taken
            event = concern_received(
                report,
                school_id=school_id,
                reference=new_reference(received_at=received_at),
                channel=channel,
                raw_input_id=raw.raw_input_id,
                received_at=received_at,
                traceparent=current_traceparent(),
            )
            try:
                async with self.uow.begin() as work:
                    accepted = await self.store.accept(work.session, event)
                    if accepted:
                        work.emit([event])
            except IntegrityError:
                # The same raw input was accepted concurrently (a retried post with the same idempotency key).
                async with self.uow.begin() as work:
                    earlier = await self.store.reference_of(work.session, raw_input_id=raw.raw_input_id)
                if earlier is None:
                    raise
                return Accepted(earlier, raw.raw_input_id, repeated=True)
            except DataError as refused:
                # Something in the report PostgreSQL cannot store: quarantine it, the raw bytes are kept.
                reason = f"the report could not be stored as given: {refused.orig.__class__.__name__}"
                await self._reject(raw.raw_input_id, reason)
                return Rejected(raw.raw_input_id, reason)
            if accepted:
                return Accepted(event.payload.reference, raw.raw_input_id)
        raise RuntimeError(f"no free reference after {REFERENCE_ATTEMPTS} attempts")

    async def _reject(self, raw_input_id: uuid.UUID, reason: str) -> None:
        async with self.uow.begin() as work:
            await self.store.reject(work.session, raw_input_id=raw_input_id, reason=reason)


def _field_errors(invalid: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors in the reporter-facing form: the dotted field, the message, the error type."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "(body)",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in invalid.errors()
    ]
