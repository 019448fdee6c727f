"""The reporter's status page: a reference and its secret show the concern's stage, and nothing else."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.intake.door import read_limited, retry_after_header
from services.intake.gate import Gate
from services.intake.http import STATUS_PATH
from services.intake.receipts import STAGE_WORDS, stage_of
from services.intake.web_form import templates

MAX_STATUS_FORM_BYTES = 1024


def router(*, gate: Gate) -> APIRouter:
    """GET shows the form; POST (so secrets stay out of addresses and logs) shows the stage."""
    pages = APIRouter(include_in_schema=False)

    def page(*, status: int = 200, headers: dict[str, str] | None = None, **context: object) -> HTMLResponse:
        return HTMLResponse(templates.get_template("status.html").render(**context), status, headers=headers)

    @pages.get(STATUS_PATH, response_class=HTMLResponse)
    async def status_form() -> HTMLResponse:
        return page()

    @pages.post(STATUS_PATH, response_class=HTMLResponse)
    async def status_of_concern(request: Request) -> HTMLResponse:
        wait = gate.limiter.take(request.client.host if request.client else "unknown")  # guessing secrets is slow
        if wait > 0:
            return page(status=429, headers={"Retry-After": retry_after_header(wait)}, not_found=True)
        body = await read_limited(request.stream(), limit=MAX_STATUS_FORM_BYTES)
        fields = parse_qs(body.data.decode("utf-8", "replace"))
        reference, secret = (fields.get(name, [""])[0] for name in ("reference", "secret"))
        stage = await stage_of(gate.intake.uow, reference=reference, secret=secret) if reference and secret else None
        if stage is None:
            return page(status=404, not_found=True)
        return page(stage=stage, stage_words=STAGE_WORDS[stage])

    return pages
