"""Intake's JSON API: thin routes that let an input through the gate and answer with what became of it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.intake.door import parse_concern_json
from services.intake.gate import Admission, Gate
from services.intake.handlers import Accepted
from shared.contracts.concern import Channel
from shared.tracing import tracer

SCHOOL_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SchoolId = Annotated[str, Path(pattern=SCHOOL_ID_PATTERN, description="the school's id, e.g. st-marks")]
JSON = frozenset({"application/json"})
STATUS_PATH = "/status"


class ConcernAccepted(BaseModel):
    reference: str
    raw_input_id: str
    status_url: str | None = Field(default=None, description="where the reporter can see the concern's stage")
    receipt_secret: str | None = Field(
        default=None, description="given once, with the first acceptance: with the reference it opens the status page"
    )


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ConcernRejected(BaseModel):
    """Every refusal: why, which fields, and the id of what was kept (none when nothing could be kept)."""

    detail: str
    errors: list[FieldError]
    raw_input_id: str | None = None
    attempt_id: str | None = Field(default=None, description="a refused webhook attempt's id")


def refusal_doc(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ConcernRejected, "description": description, **extra}


REFUSALS: dict[int | str, dict[str, Any]] = {
    404: refusal_doc("No such school here; nothing is kept."),
    413: refusal_doc("Too large: the first part is kept and quarantined."),
    415: refusal_doc("Not application/json: the body is kept and quarantined."),
    422: refusal_doc("Not a valid concern: the body is kept and quarantined; `errors` name the fields."),
    429: refusal_doc(
        "Too many reports from this address: the body is kept and quarantined; retry after the given seconds.",
        headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    ),
}


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": ConcernAccepted, "description": "A repeat of an earlier input: the same reference"},
    **REFUSALS,
}


def request_body(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI extra for a route that reads its body itself (so nothing is lost to FastAPI's parsing)."""
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


def answer(admission: Admission) -> JSONResponse:
    """The JSON answer to an admission: the reference, or the refusal with the kept raw input's id."""
    outcome = admission.outcome
    if isinstance(outcome, Accepted):
        body: dict[str, Any] = {
            "reference": outcome.reference,
            "raw_input_id": str(outcome.raw_input_id),
            "status_url": STATUS_PATH,
            "receipt_secret": admission.receipt_secret,
        }
    else:
        body = {"detail": outcome.reason, "errors": outcome.errors, "raw_input_id": str(outcome.raw_input_id)}
    return JSONResponse(body, status_code=admission.status, headers=admission.headers)


def router(*, gate: Gate, known_schools: frozenset[str]) -> APIRouter:
    """Routes for the JSON API."""
    api = APIRouter()

    @api.post(
        "/api/v1/schools/{school_id}/concerns",
        status_code=202,
        response_model=ConcernAccepted,
        responses=ANSWERS,
        openapi_extra=request_body("application/json", {"$ref": "#/components/schemas/ConcernReport"}),
        summary="Report a concern",
    )
    async def report_concern(
        request: Request,
        school_id: SchoolId,
        idempotency_key: Annotated[str | None, Header(description="the same key gives the same reference")] = None,
    ) -> JSONResponse:
        """Accept a concern as JSON; the raw body is kept before it is validated."""
        if school_id not in known_schools:
            raise HTTPException(404, f"unknown school {school_id!r}")
        with tracer().start_as_current_span("intake receive concern", attributes={"safeguard.school": school_id}):
            admission = await gate.keep(
                await gate.arrive(request),
                school_id=school_id,
                channel=Channel.json_api,
                parse=parse_concern_json,
                accepts=JSON,
                idempotency_key=idempotency_key,
            )
        return answer(admission)

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
