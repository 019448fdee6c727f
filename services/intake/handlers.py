"""Intake's use case: keep the raw input, validate, accept (concern, receipt and outbox row in one statement).

Two round trips to PostgreSQL a report: the raw bytes are committed (one statement, atomic alone) before anything
parses them, then the acceptance is one statement too. Neither opens a transaction block.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError

from services.intake.domain import concern_received, new_reference, quarantined
from services.intake.email_in import AutomatedMessage
from services.intake.receipts import digest as receipt_digest
from services.intake.receipts import new_receipt_secret
from services.intake.store import Acceptance, Arrived, IntakeStore, RawInput
from shared.coalesce import Coalesced
from shared.contracts.concern import Channel, ConcernReport
from shared.tracing import current_traceparent
from shared.unit_of_work import UnitOfWork
from shared.validation import describe, problems

REFERENCE_ATTEMPTS = 5


@dataclass(frozen=True)
class Accepted:
    reference: str
    raw_input_id: uuid.UUID
    repeated: bool = False
    receipt_secret: str | None = None  # with a first acceptance that asked for a receipt: shown to the reporter once


@dataclass(frozen=True)
class Rejected:
    raw_input_id: uuid.UUID
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Intake:
    """Everything receiving a concern needs; one per process, shared by every channel.

    Reports arriving together are kept together, and accepted together: one statement (one round trip, one
    commit) for every raw input that arrived while the previous statement was in flight (`shared.coalesce`).
    A caller still returns only once its own row is committed, and a failing group is retried one by one.
    """

    uow: UnitOfWork
    store: IntakeStore
    clock: Callable[[], datetime]
    _keep: Coalesced[Arrived, RawInput] = field(init=False, repr=False)
    _accept: Coalesced[Acceptance, bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keep = Coalesced(self._keep_all, size=lambda arrived: len(arrived.body))  # bodies: up to 8 MB a group
        self._accept = Coalesced(self._accept_all)

    async def _keep_all(self, arrived: Sequence[Arrived]) -> list[RawInput]:
        return await self.uow.run(lambda work: self.store.keep_raw_all(work.session, arrived), single_statement=True)

    async def _accept_all(self, acceptances: Sequence[Acceptance]) -> list[bool]:
        return await self.uow.run(
            lambda work: self.store.accept_all(work.session, acceptances, work=work), single_statement=True
        )

    async def receive(
        self,
        body: bytes,
        *,
        school_id: str,
        channel: Channel,
        content_type: str,
        parse: Callable[[bytes], ConcernReport],
        idempotency_key: str | None = None,
        receipt: bool = False,
    ) -> Accepted | Rejected:
        """Keep `body` as received, then parse it; nothing is lost whether it is accepted or rejected.

        With `receipt`, a first acceptance also issues a receipt: its one-time secret comes back in `Accepted`.
        """
        received_at = self.clock()
        raw = await self._keep.submit(
            Arrived(school_id, channel.value, content_type, body, received_at, idempotency_key)
        )
        if raw.status == "accepted" and raw.reference:
            return Accepted(raw.reference, raw.raw_input_id, repeated=True)
        if raw.status == "rejected":
            return Rejected(raw.raw_input_id, raw.rejection_reason or "rejected earlier")
        return await self.finish(
            raw.raw_input_id,
            body,
            school_id=school_id,
            channel=channel,
            parse=parse,
            received_at=received_at,
            receipt_secret=new_receipt_secret() if receipt else None,
        )

    async def finish(
        self,
        raw_input_id: uuid.UUID,
        body: bytes,
        *,
        school_id: str,
        channel: Channel,
        parse: Callable[[bytes], ConcernReport],
        received_at: datetime,
        receipt_secret: str | None = None,
    ) -> Accepted | Rejected:
        """Parse a kept raw input and accept it or quarantine it (also what the sweeper does with a stuck one)."""
        quarantine = partial(self._quarantine, raw_input_id, school_id=school_id, channel=channel, at=received_at)
        try:
            report = parse(body)
        except ValidationError as invalid:
            errors = [
                {"field": problem.field or "(body)", "message": problem.message, "type": problem.type}
                for problem in problems(invalid)
            ]
            reason = describe(invalid, whole="(body)")
            await quarantine(reason, code="invalid")
            return Rejected(raw_input_id, reason, errors)
        except AutomatedMessage as automated:  # kept and set aside, but nobody needs to hear of an auto-reply
            await quarantine(str(automated), code=None)
            return Rejected(raw_input_id, str(automated))
        except ValueError as invalid:
            await quarantine(str(invalid), code=getattr(invalid, "code", "unreadable"))
            return Rejected(raw_input_id, str(invalid))
        for _ in range(REFERENCE_ATTEMPTS):  # a fresh reference if a random one is already taken
            event = concern_received(
                report,
                school_id=school_id,
                reference=new_reference(received_at=received_at),
                channel=channel,
                raw_input_id=raw_input_id,
                received_at=received_at,
                traceparent=current_traceparent(),
            )
            receipt_sha256 = receipt_digest(receipt_secret) if receipt_secret else None
            try:
                accepted = await self._accept.submit(Acceptance(event, receipt_sha256))
            except IntegrityError:
                # The same raw input was accepted concurrently (a retried post, or the sweeper and a slow receive).
                async with self.uow.begin() as work:
                    earlier = await self.store.reference_of(work.session, raw_input_id=raw_input_id)
                if earlier is None:
                    raise
                return Accepted(earlier, raw_input_id, repeated=True)
            except DataError as refused:
                # Something in the report PostgreSQL cannot store: quarantine it, the raw bytes are kept.
                reason = f"the report could not be stored as given: {refused.orig.__class__.__name__}"
                await quarantine(reason, code="unstorable")
                return Rejected(raw_input_id, reason)
            if accepted:
                return Accepted(event.payload.reference, raw_input_id, receipt_secret=receipt_secret)
        raise RuntimeError(f"no free reference after {REFERENCE_ATTEMPTS} attempts")

    async def _quarantine(
        self, raw_input_id: uuid.UUID, reason: str, *, code: str | None, school_id: str, channel: Channel, at: datetime
    ) -> None:
        """Mark the raw input rejected; with a `code`, publish intake.quarantined (only if this call rejected it)."""
        async with self.uow.begin() as work:
            rejected = await self.store.reject(work.session, raw_input_id=raw_input_id, reason=reason)
            if rejected and code is not None:
                work.emit([quarantined(raw_input_id, school_id=school_id, channel=channel, code=code, received_at=at)])
