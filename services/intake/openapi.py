"""Intake's published contract: a self-contained OpenAPI document and one shape for every refusal."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.intake.door import escape_unstorable
from shared.contracts.concern import ConcernReport

COMPONENT_REF = "#/components/schemas/{model}"


def concern_report_components() -> dict[str, Any]:
    """ConcernReport and every schema it refers to, as OpenAPI components (no `$defs` left inside)."""
    schema = ConcernReport.model_json_schema(ref_template=COMPONENT_REF)
    components: dict[str, Any] = schema.pop("$defs", {})
    components["ConcernReport"] = schema
    return components


def self_contained_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request schemas the routes refer to by `$ref`."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        document.setdefault("components", {}).setdefault("schemas", {}).update(concern_report_components())
        app.openapi_schema = document
    return app.openapi_schema


def _field(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes where the value came from ("body", "header", "path"); the reporter needs the name.
    parts = [str(part) for part in location]
    return escape_unstorable(".".join(parts) or "(request)")


async def _invalid_request(_: Request, invalid: Exception) -> JSONResponse:
    assert isinstance(invalid, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in invalid.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors, "raw_input_id": None}, status_code=422)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    body: dict[str, object] = {"detail": str(error.detail), "errors": [], "raw_input_id": None}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def publish_contract(app: FastAPI) -> None:
    """Serve the self-contained document and answer FastAPI's own refusals in the ConcernRejected shape."""
    app.openapi = lambda: self_contained_openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
