"""What every intake channel does at the door: read a bounded body, limit each client's rate, parse safely."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from pydantic import ValidationError

from shared.contracts.concern import ConcernReport


@dataclass(frozen=True)
class Body:
    """The bytes that arrived, at most the limit; `truncated` when the sender sent more."""

    data: bytes
    truncated: bool


async def read_limited(chunks: AsyncIterator[bytes], *, limit: int) -> Body:
    """Read a streamed body up to `limit` bytes and stop there: a huge body is never held whole."""
    kept = bytearray()
    async for chunk in chunks:
        room = limit - len(kept)
        if len(chunk) > room:
            kept += chunk[:room]
            return Body(bytes(kept), truncated=True)
        kept += chunk
    return Body(bytes(kept), truncated=False)


def content_key(data: bytes) -> str:
    """An idempotency key for a body: the same bytes delivered again (a sender's retry) are one input."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Refused(ValueError):
    """Raised by a parse function that refuses an input; `code` is the short reason `intake.quarantined` carries."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.code = code


def refuse(reason: str, *, code: str) -> Callable[[bytes], ConcernReport]:
    """A parse function that refuses every input with `reason`, so the raw bytes are kept and quarantined."""

    def parse(_: bytes) -> ConcernReport:
        raise Refused(reason, code=code)

    return parse


def escape_unstorable(text: str) -> str:
    """`text` with the characters PostgreSQL cannot store (NUL, lone surrogates) written as `\\uXXXX` escapes."""
    return "".join(c if c != "\x00" and not "\ud800" <= c <= "\udfff" else f"\\u{ord(c):04x}" for c in text)


def _printable_part(part: object) -> object:
    return escape_unstorable(part) if isinstance(part, str) else part


def parse_concern_json(body: bytes) -> ConcernReport:
    """A concern from JSON; error locations never carry characters the rejection reason could not store."""
    try:
        return ConcernReport.model_validate_json(body)
    except ValidationError as invalid:
        errors = invalid.errors()
        if all(_printable_part(part) == part for error in errors for part in error["loc"]):
            raise
        details = [
            {
                "type": error["type"],
                "loc": tuple(_printable_part(part) for part in error["loc"]),
                "input": None,
                **({"ctx": error["ctx"]} if "ctx" in error else {}),
            }
            for error in errors
        ]
        raise ValidationError.from_exception_data(invalid.title, details) from None  # type: ignore[arg-type]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client, in this process: `burst` at once, then `per_second` sustained."""

    def __init__(self, *, per_second: float, burst: int, clock: Callable[[], float], max_clients: int = 10_000):
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """0 if `client` may go ahead now (a token is spent), else the seconds until it may try again."""
        now = self.clock()
        bucket = self._buckets.pop(client, None) or _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[client] = bucket  # most recently seen last, so the oldest is forgotten first
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_second


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a client told 0 would retry at once)."""
    return str(max(1, math.ceil(wait_seconds)))
