"""The one way every HTTP channel lets an input in: rate limit, bounded read, content type, then keep it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from services.intake.door import RateLimiter, escape_unstorable, read_limited, refuse, retry_after_header
from services.intake.handlers import Accepted, Intake, Rejected
from shared.contracts.concern import Channel, ConcernReport
from shared.settings import Settings

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Admission:
    """What became of one input: the use case's outcome, and the HTTP status and headers to answer with."""

    outcome: Accepted | Rejected
    status: int
    headers: dict[str, str] = field(default_factory=dict)


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class Gate:
    """Shared by the JSON API, the web form, inbound email and webhooks; nothing that arrives is dropped."""

    intake: Intake
    limiter: RateLimiter
    max_body_bytes: int

    async def admit(
        self,
        request: Request,
        *,
        school_id: str,
        channel: Channel,
        parse: Callable[[bytes], ConcernReport],
        accepts: frozenset[str],
        idempotency_key: str | None = None,
    ) -> Admission:
        """Keep the request's body (cut at the limit) and parse it unless the door refuses it first."""
        content_type = escape_unstorable(request.headers.get("content-type", ""))
        wait = self.limiter.take(request.client.host if request.client else "unknown")
        body = await read_limited(request.stream(), limit=self.max_body_bytes)
        refusal: tuple[int, str] | None = None
        if wait > 0:
            refusal = (429, "too many reports from this address in a short time; it is kept, try again later")
        elif body.truncated:
            refusal = (413, f"too large: at most {self.max_body_bytes} bytes are accepted; the first part is kept")
        elif media_type(content_type) not in accepts:
            refusal = (415, f"unsupported content type {media_type(content_type)!r}; send {' or '.join(accepts)}")
        elif idempotency_key is not None and (
            len(idempotency_key) > MAX_IDEMPOTENCY_KEY or escape_unstorable(idempotency_key) != idempotency_key
        ):
            refusal = (422, f"idempotency-key: at most {MAX_IDEMPOTENCY_KEY} characters, none of them NUL")
        if refusal is None:
            outcome = await self.intake.receive(
                body.data,
                school_id=school_id,
                channel=channel,
                content_type=content_type or "(none)",
                parse=parse,
                idempotency_key=idempotency_key,
            )
            status = 202 if isinstance(outcome, Accepted) and not outcome.repeated else 200
            return Admission(outcome, status if isinstance(outcome, Accepted) else 422)
        status, reason = refusal
        # No idempotency key: a client that retries the same key after fixing the problem must not meet this refusal.
        outcome = await self.intake.receive(
            body.data,
            school_id=school_id,
            channel=channel,
            content_type=content_type or "(none)",
            parse=refuse(reason),
        )
        headers = {"Retry-After": retry_after_header(wait)} if status == 429 else {}
        return Admission(outcome, status, headers)


def build_gate(intake: Intake, *, settings: Settings, clock: Callable[[], float] = time.monotonic) -> Gate:
    """The gate for these settings: its size limit and per-client rate."""
    limiter = RateLimiter(per_second=settings.intake_rate_per_second, burst=settings.intake_rate_burst, clock=clock)
    return Gate(intake=intake, limiter=limiter, max_body_bytes=settings.intake_max_body_bytes)
