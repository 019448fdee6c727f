"""Intake's HTTP API: thin routes that call the Intake use case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.intake.handlers import Accepted, Intake
from shared.contracts.concern import Channel, ConcernReport
from shared.tracing import tracer

MAX_BODY_BYTES = 256 * 1024
SchoolId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="the school's id, e.g. st-marks")]


class ConcernAccepted(BaseModel):
    reference: str
    raw_input_id: str
    status_url: str | None = None


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ConcernRejected(BaseModel):
    detail: str
    errors: list[FieldError]
    raw_input_id: str


def router(*, intake: Intake, known_schools: frozenset[str]) -> APIRouter:
    """Routes for the JSON API."""
    api = APIRouter()

    @api.post(
        "/api/v1/schools/{school_id}/concerns",
        status_code=202,
        response_model=ConcernAccepted,
        responses={422: {"model": ConcernRejected}, 404: {}, 413: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ConcernReport.model_json_schema()}},
            }
        },
        summary="Report a concern",
    )
    async def report_concern(
        request: Request,
        school_id: SchoolId,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse:
        """Accept a concern as JSON; the raw body is kept before it is validated."""
        if school_id not in known_schools:
            raise HTTPException(404, f"unknown school {school_id!r}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"a concern may be at most {MAX_BODY_BYTES} bytes")
        with tracer().start_as_current_span("intake receive concern", attributes={"safeguard.school": school_id}):
            outcome = await intake.receive(
                body,
                school_id=school_id,
                channel=Channel.json_api,
                content_type=request.headers.get("content-type", "application/json"),
                parse=ConcernReport.model_validate_json,
                idempotency_key=idempotency_key,
            )
        if isinstance(outcome, Accepted):
            return JSONResponse(
                {"reference": outcome.reference, "raw_input_id": str(outcome.raw_input_id)},
                status_code=200 if outcome.repeated else 202,
            )
        return JSONResponse(
            {"detail": outcome.reason, "errors": outcome.errors, "raw_input_id": str(outcome.raw_input_id)},
            status_code=422,
        )

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
