"""Break-glass: a reader opens a case outside their need to know by stating why; recorded, and the DSLs alerted.

Only a case that need-to-know alone keeps from a reader role (DSL, deputy, headteacher, named governor, trust
safeguarding lead) opens this way. A case about the person asking stays hidden (404) whatever they state, as
does another school's; staff and trust administrators cannot break glass (403). The view is recorded as
`record.viewed` with `break_glass` and the stated reason before the case is shown; routing reads that event and
tells the school's DSLs who broke glass on which reference, and when, with no case content.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from services.console.access import may_break_glass, may_see_case
from services.console.read_audit import record_case_read
from services.console.reading import case_file, case_row, facts
from services.console.store import scoped
from services.console.web import Context, form_with_csrf, page, signed_in

NOT_FOUND = "There is no such case, or it is not yours to see."
# Long enough to say why, short enough for the record (record.viewed's reason holds 2,000 characters).
REASON_CHARACTERS = (10, 2000)


def break_glass_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.post("/cases/{case_id}/break-glass")
    async def break_glass(request: Request, case_id: str) -> Response:
        visit = await signed_in(context, request)
        form = await form_with_csrf(request, visit.csrf_token)
        principal = visit.principal
        async with scoped(context.sessions, school_ids=principal.school_ids) as session:
            row = await case_row(session, case_id)
            if row is None:
                raise HTTPException(status_code=404, detail=NOT_FOUND)
            if may_see_case(principal, facts(row)) == "allowed":
                return RedirectResponse(f"/cases/{case_id}", status_code=303)
            verdict = may_break_glass(principal, facts(row))
            if verdict == "hidden":
                raise HTTPException(status_code=404, detail=NOT_FOUND)
            if verdict != "allowed":
                raise HTTPException(status_code=403, detail="Your role cannot open a case by break-glass.")
            reason = " ".join(form.get("reason", "").split())
            shortest, longest = REASON_CHARACTERS
            if not shortest <= len(reason) <= longest:
                said = f"State why you need to open this case ({shortest} to {longest} characters)."
                return page(request, "break_glass.html", status_code=400, visit=visit, case_id=case_id, said=said)
            file = await case_file(session, row)
        await record_case_read(
            context.uow,
            principal,
            school_id=row.school_id,
            case_id=case_id,
            at=context.clock(),
            reason=reason,
            break_glass=True,
        )
        return page(request, "case.html", visit=visit, file=file, may_act=False, said="", now=context.clock())

    return router
