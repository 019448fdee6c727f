"""`POST /api/v1/inbound-email`: a raw RFC 5322 message, as mail providers' inbound hooks deliver it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from services.intake.door import content_key
from services.intake.email_in import recipients
from services.intake.gate import Gate
from services.intake.http import ANSWERS, ConcernAccepted, answer, request_body
from shared.contracts.concern import Channel, ConcernReport

RAW_EMAIL = frozenset({"message/rfc822", "application/octet-stream", "text/plain"})


def school_for(raw: bytes, *, addresses: Mapping[str, str], recipient: str | None) -> str | None:
    """The school a message is for: the named recipient, else the first of its delivery addresses we serve."""
    candidates = [recipient.strip().lower()] if recipient else recipients(raw)
    return next((addresses[address] for address in candidates if address in addresses), None)


def router(*, gate: Gate, addresses: Mapping[str, str], parse: Callable[[bytes], ConcernReport]) -> APIRouter:
    """The raw-email upload route."""
    api = APIRouter()

    @api.post(
        "/api/v1/inbound-email",
        status_code=202,
        response_model=ConcernAccepted,
        responses=ANSWERS,
        openapi_extra=request_body("message/rfc822", {"type": "string"}),
        summary="Upload a raw email addressed to a school's reporting address",
    )
    async def inbound_email(
        request: Request,
        to: Annotated[str | None, Query(max_length=320, description="the recipient, if not in the headers")] = None,
    ) -> JSONResponse:
        """Keep the message for the school it is addressed to, then parse it as an email concern."""
        arrival = await gate.arrive(request, max_bytes=gate.max_email_bytes)
        school_id = school_for(arrival.body.data, addresses=addresses, recipient=to)
        if school_id is None:
            raise HTTPException(404, "no school takes reports at the addresses this message was sent to")
        admission = await gate.keep(
            arrival,
            school_id=school_id,
            channel=Channel.email,
            parse=parse,
            accepts=RAW_EMAIL,
            idempotency_key=None if arrival.body.truncated else content_key(arrival.body.data),
        )
        return answer(admission)

    return api
