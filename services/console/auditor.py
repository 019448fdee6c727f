"""The auditor view: pick a school and a moment, see its cases as they stood, a case's chronology, verify, export.

For auditors and the trust safeguarding lead, over the schools they may see; every other role is refused (403)
and another trust's school does not exist for them (404). Everything comes from audit over request/reply
(audit_client.py), which checks the person again and records every read in the ledger before answering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from services.console.access import Page, Principal, may_open
from services.console.audit_client import AuditClient, ExportBroken
from services.console.web import Context, form_with_csrf, page, signed_in

STATUS = {"not_found": 404, "wrong_school": 404, "not_permitted": 403, "not_anchored": 409, "invalid": 400}


def moment(text: str | None, *, now: datetime) -> datetime:
    """The moment a form names (`YYYY-MM-DDTHH:MM`, read as UTC, or with its own offset); now when blank."""
    if not text:
        return now
    try:
        chosen = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(status_code=400, detail="That is not a date and time.") from None
    return chosen if chosen.tzinfo else chosen.replace(tzinfo=UTC)


def _picked(principal: Principal, school: str) -> str:
    if not may_open(principal, Page.audit):
        raise HTTPException(status_code=403, detail="Your role does not let you open this.")
    if school not in principal.school_ids:
        raise HTTPException(status_code=404, detail="There is no such school, or it is not yours to see.")
    return school


def _answered(answer: dict[str, Any]) -> dict[str, Any]:
    """Audit's answer, or its refusal as the matching HTTP error in audit's own words."""
    if not answer.get("ok"):
        raise HTTPException(status_code=STATUS.get(str(answer.get("code")), 503), detail=str(answer.get("error")))
    return answer


def auditor_router(context: Context, *, audit: AuditClient) -> APIRouter:
    router = APIRouter()

    @router.get("/audit")
    async def picker(request: Request) -> Response:
        visit = await signed_in(context, request)
        _picked(visit.principal, visit.principal.school_id)
        now = context.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return page(request, "audit.html", visit=visit, schools=sorted(visit.principal.school_ids), now=now)

    @router.get("/audit/cases")
    async def cases(request: Request, school: str = "", as_of: str = "", offset: int = 0) -> Response:
        visit = await signed_in(context, request)
        school = _picked(visit.principal, school)
        when = moment(as_of, now=context.clock())
        answer = _answered(
            await audit.query(visit.principal, "replay", school_id=school, as_of=when.isoformat(), offset=offset)
        )
        return page(request, "audit_cases.html", visit=visit, school=school, as_of=when, picked=as_of, replay=answer)

    @router.get("/audit/cases/{case_id}")
    async def chronology(request: Request, case_id: str, school: str = "", as_of: str = "") -> Response:
        visit = await signed_in(context, request)
        school = _picked(visit.principal, school)
        when = moment(as_of, now=context.clock())
        answer = _answered(
            await audit.query(visit.principal, "case", school_id=school, case_id=case_id, as_of=when.isoformat())
        )
        return page(request, "audit_case.html", visit=visit, school=school, as_of=when, picked=as_of, found=answer)

    @router.post("/audit/verify")
    async def verify(request: Request) -> Response:
        visit = await signed_in(context, request)
        form = await form_with_csrf(request, visit.csrf_token)
        school = _picked(visit.principal, form.get("school", ""))
        answer = _answered(await audit.query(visit.principal, "verify", school_id=school))
        return page(request, "audit_verify.html", visit=visit, school=school, report=answer)

    @router.get("/audit/export")
    async def export(request: Request, school: str = "") -> Response:
        visit = await signed_in(context, request)
        school = _picked(visit.principal, school)
        made = _answered(await audit.query(visit.principal, "export", school_id=school))

        async def body() -> AsyncIterator[bytes]:
            try:
                async for data in audit.chunks(visit.principal, str(made["export_id"])):
                    yield data
            except ExportBroken:  # the download ends short of Content-Length: the browser reports it failed
                return

        headers = {
            "Content-Disposition": f'attachment; filename="{made["filename"]}"',
            "Content-Length": str(made["size"]),
            "X-Content-SHA256": str(made["sha256"]),
        }
        return StreamingResponse(body(), media_type="application/x-ndjson", headers=headers)

    return router
