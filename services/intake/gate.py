"""The one way every HTTP channel lets an input in: rate limit, bounded read, content type, then keep it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from services.intake.door import Body, RateLimiter, escape_unstorable, read_limited, refuse, retry_after_header
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
    receipt_secret: str | None = None  # shown to the reporter once, with the reference, for the status page


@dataclass(frozen=True)
class Arrival:
    """A request's body as read at the door, before anything is decided about it."""

    body: Body
    content_type: str
    wait: float  # seconds the client must wait (0: within its rate)
    limit: int


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.split(";", 1)[0].strip().lower()


@dataclass
class Gate:
    """Shared by the JSON API, the web form, inbound email and webhooks; nothing that arrives is dropped."""

    intake: Intake
    limiter: RateLimiter
    max_body_bytes: int
    max_email_bytes: int = 25 * 1024 * 1024

    async def arrive(self, request: Request, *, max_bytes: int | None = None) -> Arrival:
        """Spend the client's token and read the body up to the limit; nothing is refused yet."""
        wait = self.limiter.take(request.client.host if request.client else "unknown")
        limit = max_bytes or self.max_body_bytes
        body = await read_limited(request.stream(), limit=limit)
        content_type = escape_unstorable(request.headers.get("content-type", ""))
        return Arrival(body=body, content_type=content_type, wait=wait, limit=limit)

    async def keep(
        self,
        arrival: Arrival,
        *,
        school_id: str,
        channel: Channel,
        parse: Callable[[bytes], ConcernReport],
        accepts: frozenset[str],
        idempotency_key: str | None = None,
    ) -> Admission:
        """Keep what arrived and parse it, unless the door refuses it first (then it is kept and quarantined)."""
        refusal = door_refusal(arrival, accepts=accepts, idempotency_key=idempotency_key)
        if refusal is not None:
            parse = refuse(refusal[1], code=REFUSAL_CODES[refusal[0]])
            # No idempotency key: a client retrying the same key after fixing the problem must not meet this refusal.
            idempotency_key = None
        outcome = await self.intake.receive(
            arrival.body.data,
            school_id=school_id,
            channel=channel,
            content_type=arrival.content_type or "(none)",
            parse=parse,
            idempotency_key=idempotency_key,
            receipt=refusal is None,
        )
        if refusal is not None:
            headers = {"Retry-After": retry_after_header(arrival.wait)} if refusal[0] == 429 else {}
            return Admission(outcome, refusal[0], headers)
        if isinstance(outcome, Accepted) and outcome.repeated:
            return Admission(outcome, 200)
        if isinstance(outcome, Accepted):
            return Admission(outcome, 202, receipt_secret=outcome.receipt_secret)
        return Admission(outcome, 422)


# The short reason each door refusal is published with in intake.quarantined.
REFUSAL_CODES = {429: "rate_limited", 413: "too_large", 415: "wrong_type", 422: "bad_idempotency_key"}


def door_refusal(arrival: Arrival, *, accepts: frozenset[str], idempotency_key: str | None) -> tuple[int, str] | None:
    """The status and reason the door refuses an arrival with, or None to let it be parsed."""
    if arrival.wait > 0:
        return 429, "too many reports from this address in a short time; it is kept, try again later"
    if arrival.body.truncated:
        return 413, f"too large: at most {arrival.limit} bytes are accepted; the first part is kept"
    if media_type(arrival.content_type) not in accepts:
        wanted = " or ".join(sorted(accepts))
        return 415, f"unsupported content type {media_type(arrival.content_type)!r}; send {wanted}"
    if idempotency_key is not None and (
        len(idempotency_key) > MAX_IDEMPOTENCY_KEY or escape_unstorable(idempotency_key) != idempotency_key
    ):
        return 422, f"idempotency-key: at most {MAX_IDEMPOTENCY_KEY} characters, none of them NUL"
    return None


def build_gate(intake: Intake, *, settings: Settings, clock: Callable[[], float] = time.monotonic) -> Gate:
    """The gate for these settings: its size limit and per-client rate."""
    limiter = RateLimiter(per_second=settings.intake_rate_per_second, burst=settings.intake_rate_burst, clock=clock)
    return Gate(
        intake=intake,
        limiter=limiter,
        max_body_bytes=settings.intake_max_body_bytes,
        max_email_bytes=settings.intake_max_email_bytes,
    )
