"""Intake's JSON API: thin routes that let an input through the gate and answer with what became of it."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from services.intake.door import parse_concern_json
from services.intake.gate import Admission, Gate
from services.intake.handlers import Accepted
from shared.contracts.concern import Channel
from shared.tracing import tracer

SCHOOL_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_SCHOOL_ID = re.compile(SCHOOL_ID_PATTERN)
SchoolId = Annotated[str, Path(pattern=SCHOOL_ID_PATTERN, description="the school's id, e.g. st-marks")]
JSON = frozenset({"application/json"})
STATUS_PATH = "/status"
CONCERNS_PATH = "/api/v1/schools/{school_id}/concerns"
_PREFIX = ["api", "v1", "schools"]


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


class ReportConcern:
    """The JSON report route's work, done the same way whether FastAPI or `ConcernShortcut` received the request."""

    def __init__(self, *, gate: Gate, known_schools: frozenset[str]) -> None:
        self.gate = gate
        self.known_schools = known_schools
        self._tracer: trace.Tracer | None = None  # looked up once: the provider is set before the first request

    async def __call__(
        self, request: Request, school_id: str, idempotency_key: str | None, *, context: Context | None = None
    ) -> JSONResponse:
        """Accept a concern as JSON; the raw body is kept before it is validated."""
        if school_id not in self.known_schools:
            raise HTTPException(404, f"unknown school {school_id!r}")
        if self._tracer is None:
            self._tracer = tracer()
        with self._tracer.start_as_current_span(
            "intake receive concern", context=context, attributes={"safeguard.school": school_id}
        ):
            admission = await self.gate.keep(
                await self.gate.arrive(request),
                school_id=school_id,
                channel=Channel.json_api,
                parse=parse_concern_json,
                accepts=JSON,
                idempotency_key=idempotency_key,
            )
        return answer(admission)


def router(*, report: ReportConcern) -> APIRouter:
    """Routes for the JSON API (a report to a known school usually arrives through `ConcernShortcut` instead)."""
    api = APIRouter()

    @api.post(
        CONCERNS_PATH,
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
        return await report(request, school_id, idempotency_key)

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api


class ConcernShortcut:
    """A POST of a report to a known school, answered by `ReportConcern` directly, without FastAPI's layers.

    FastAPI's per-request work (its telemetry middleware and spans, exception wrappers, routing, dependency
    resolution) cost more CPU than keeping and accepting the report. Everything else (an unknown or malformed
    school id, another method or path, a mounted root path) goes through FastAPI as before, so every refusal,
    the OpenAPI document and the validation answers are FastAPI's. What FastAPI would do here is done here too:
    the `Idempotency-Key` header's first value; an error answered with a plain 500 and raised on to the server
    (as Starlette's ServerErrorMiddleware does); the caller's W3C trace context continued (as FastAPI's request
    span did).
    """

    def __init__(self, report: ReportConcern) -> None:
        self.report = report

    def school_of(self, scope: Scope) -> str | None:
        """The school a request is a report to, when this shortcut answers it; None when FastAPI should."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        parts = scope["path"].split("/")
        if len(parts) != 6 or parts[0] or parts[1:4] != _PREFIX or parts[5] != "concerns":
            return None
        school_id = parts[4]
        return school_id if school_id in self.report.known_schools and _SCHOOL_ID.fullmatch(school_id) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, *, school_id: str) -> None:
        request = Request(scope, receive)
        headers = request.headers
        context = propagate.extract(headers) if "traceparent" in headers else None
        try:
            response = await self.report(request, school_id, headers.get("idempotency-key"), context=context)
        except Exception:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await response(scope, receive, send)


class IntakeApp(FastAPI):
    """FastAPI, with reports to known schools taken by a `ConcernShortcut` before FastAPI's own handling."""

    shortcut: ConcernShortcut | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.shortcut is not None and (school_id := self.shortcut.school_of(scope)) is not None:
            await self.shortcut(scope, receive, send, school_id=school_id)
            return
        await super().__call__(scope, receive, send)
