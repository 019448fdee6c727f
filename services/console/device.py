"""What the console on a phone needs besides pages: a report form, and the CSRF token for sends kept offline.

A report made in the console goes to intake's public JSON API like any other client's, with an Idempotency-Key
the form carries: however often a queued copy is sent again, intake makes one concern (the same reference).
The device's queue (static/queue.js) asks `/session/csrf` for the session's token just before it sends, so a
replayed request passes the same CSRF check as a form, with the token in the `X-CSRF-Token` header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from services.console.access import Principal
from services.console.passwords import new_token
from services.console.web import Context, form_with_csrf, page, signed_in, wants_json

# How a console role reports: the policy's words for who the reporter is to the school.
REPORTER_ROLES = {"headteacher": "headteacher", "named_governor": "governor"}
ABOUT = (("learner", "A learner"), ("staff", "An adult who works at the school"), ("parent_carer", "A parent or carer"))
INVOLVEMENTS = (("victim", "harmed or at risk"), ("subject", "the concern is about them"), ("witness", "a witness"))
RISKS = (("yes", "Yes"), ("no", "No"), ("not_sure", "Not sure"))
KEY = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
Kinds = Mapping[str, list[tuple[str, str]]]


def concern_json(principal: Principal, form: Mapping[str, str]) -> dict[str, Any]:
    """The concern as intake's JSON API reads it, the reporter being the signed-in person."""
    reporter = {
        "role": REPORTER_ROLES.get(principal.role, "staff"),
        "name": principal.username,
        "person_id": principal.person_id,
    }
    person = {"role": form.get("about", "learner"), "involvement": form.get("involvement", "victim")}
    return {
        "reporter": reporter,
        "people": [person],
        "kind": form.get("kind", ""),
        "summary": form.get("summary", "").strip(),
        "details": form.get("details", "").strip(),
        "immediate_risk": form.get("immediate_risk", "not_answered"),
    }


def intake_key(principal: Principal, key: str) -> str:
    """The key intake sees: one account's keys never meet another's."""
    return f"console-{principal.account_id}-{key}"


class IntakeDoor:
    """Intake's JSON API, as the console reaches it."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")

    async def report(self, *, school_id: str, body: dict[str, Any], idempotency_key: str) -> tuple[int, dict[str, Any]]:
        """Intake's status and answer; 503 when it cannot be reached."""
        url = f"{self._base_url}/api/v1/schools/{school_id}/concerns"
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                answer = await client.post(url, json=body, headers={"Idempotency-Key": idempotency_key})
        except httpx.HTTPError:
            return 503, {"detail": "intake did not answer; try again"}
        try:
            said = answer.json()
        except ValueError:
            said = {}
        return answer.status_code, said if isinstance(said, dict) else {}


def _outcome(status: int) -> int:
    """The console's own status for intake's: accepted, try again later, or refused for good."""
    if status in (200, 202):
        return 200
    return 503 if status >= 500 or status == 429 else 409


def device_router(context: Context, *, kinds: Kinds, intake: IntakeDoor) -> APIRouter:
    router = APIRouter()

    @router.get("/session/csrf")
    async def session_token(request: Request) -> Response:
        visit = await signed_in(context, request)
        return JSONResponse({"csrf_token": visit.csrf_token, "account": visit.principal.account_id})

    def report_page(request: Request, visit: Any, *, status_code: int = 200, **values: Any) -> Response:
        values = {"reference": "", "error": "", "entered": {}, **values}
        return page(
            request,
            "report.html",
            status_code=status_code,
            visit=visit,
            kinds=kinds.get(visit.principal.school_id, []),
            about=ABOUT,
            involvements=INVOLVEMENTS,
            risks=RISKS,
            key=new_token(),
            **values,
        )

    @router.get("/report")
    async def report_form(request: Request) -> Response:
        return report_page(request, await signed_in(context, request))

    @router.post("/report")
    async def send_report(request: Request) -> Response:
        visit = await signed_in(context, request)
        form = await form_with_csrf(request, visit.csrf_token)
        key = form.get("idempotency_key") or request.headers.get("idempotency-key", "")
        if not KEY.match(key):
            raise HTTPException(status_code=400, detail="The report carries no usable idempotency key.")
        status, said = await intake.report(
            school_id=visit.principal.school_id,
            body=concern_json(visit.principal, form),
            idempotency_key=intake_key(visit.principal, key),
        )
        outcome = _outcome(status)
        error = "" if outcome == 200 else str(said.get("detail") or "intake refused the report")
        if wants_json(request):
            return JSONResponse(
                {"ok": outcome == 200, "reference": said.get("reference", ""), "error": error}, status_code=outcome
            )
        if outcome == 200:
            return report_page(request, visit, reference=str(said.get("reference", "")))
        return report_page(request, visit, status_code=outcome, error=error, entered=form)

    return router
