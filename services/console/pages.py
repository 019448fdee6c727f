"""The pages a signed-in person uses: inbox (live), case view, case commands, own reports, people.

The overview is in `overview_pages.py`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from services.console.access import CASE_READERS, STAFF, Page, Principal, may_break_glass, may_open, may_see_case
from services.console.commands import COMMAND_FIELDS, CaseCommands
from services.console.read_audit import record_case_read
from services.console.reading import account_rows, case_file, case_row, case_rows, facts, inbox_order, latest_change
from services.console.store import scoped
from services.console.web import Context, Visit, form_with_csrf, page, signed_in, wants_json

NOT_FOUND = "There is no such case, or it is not yours to see."
# How long a case page opened after a command waits for the read model to show what the command recorded.
CATCH_UP_SECONDS = 3.0


def _refuse(verdict: str) -> None:
    if verdict == "hidden":
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if verdict in ("forbidden", "restricted"):
        raise HTTPException(status_code=403, detail="Your role does not let you open this.")


def news(row: Any) -> dict[str, str]:
    """What the live inbox is told about a new or changed case."""
    return {
        "case_id": row.case_id,
        "reference": row.reference,
        "urgency": row.urgency,
        "status": row.status,
        "kind": row.kind,
    }


def _checked(principal: Principal, row: Any | None, kind: Page) -> Any:
    """The case row when this person may see it for this page; 404 or 403 otherwise."""
    if row is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    _refuse(may_see_case(principal, facts(row), page=kind))
    return row


def _require(principal: Principal, kind: Page) -> None:
    if not may_open(principal, kind):
        raise HTTPException(status_code=403, detail="Your role does not let you open this.")


def pages_router(context: Context, *, commands: CaseCommands) -> APIRouter:
    router = APIRouter()

    def scope(principal: Principal):  # type: ignore[no-untyped-def]
        return scoped(context.sessions, school_ids=principal.school_ids)

    @router.get("/")
    async def home(request: Request) -> Response:
        visit = await signed_in(context, request)
        role = visit.principal.role
        target = "/inbox" if role in CASE_READERS else "/my-reports" if role == STAFF else "/admin"
        return RedirectResponse(target, status_code=303)

    @router.get("/inbox")
    async def inbox(request: Request) -> Response:
        visit = await signed_in(context, request)
        _require(visit.principal, Page.inbox)
        async with scope(visit.principal) as session:
            rows = await case_rows(session)
            change = await latest_change(session)
        visible = sorted((r for r in rows if may_see_case(visit.principal, facts(r)) == "allowed"), key=inbox_order)
        overview = may_open(visit.principal, Page.overview)
        return page(
            request, "inbox.html", visit=visit, cases=visible, change=change, now=context.clock(), overview=overview
        )

    @router.get("/inbox/events")
    async def inbox_events(request: Request, after: int = 0) -> Response:
        visit = await signed_in(context, request)
        _require(visit.principal, Page.inbox)

        # EventSource reconnects by itself, saying where it got to: each stream ends after a while.
        resume = request.headers.get("last-event-id", "")
        start = int(resume) if resume.isdigit() else after
        ends = asyncio.get_running_loop().time() + context.settings.events_stream_seconds

        async def stream() -> AsyncIterator[str]:
            seen = start
            yield "retry: 2000\n\n"
            while asyncio.get_running_loop().time() < ends and not await request.is_disconnected():
                async with scope(visit.principal) as session:
                    rows = await case_rows(session, since_change=seen)
                for row in sorted(rows, key=lambda r: r.change):
                    seen = max(seen, row.change)
                    if may_see_case(visit.principal, facts(row)) == "allowed":
                        yield f"id: {row.change}\nevent: case\ndata: {json.dumps(news(row))}\n\n"
                await asyncio.sleep(context.settings.inbox_poll_seconds)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def allowed_case(visit: Visit, case_id: str, kind: Page) -> Any:
        async with scope(visit.principal) as session:
            return _checked(visit.principal, await case_row(session, case_id), kind)

    async def caught_up(visit: Visit, case_id: str, seen: int) -> None:
        """After a command, wait (briefly) until the read model holds the version routing answered with."""
        ends = asyncio.get_running_loop().time() + CATCH_UP_SECONDS
        while seen and asyncio.get_running_loop().time() < ends:
            async with scope(visit.principal) as session:
                row = await case_row(session, case_id)
            if row is None or row.version >= seen:
                return
            await asyncio.sleep(0.05)

    @router.get("/cases/{case_id}")
    async def case_view(request: Request, case_id: str, seen: int = 0) -> Response:
        visit = await signed_in(context, request)
        await caught_up(visit, case_id, seen)
        async with scope(visit.principal) as session:
            found = await case_row(session, case_id)
            if found is not None and may_break_glass(visit.principal, facts(found)) == "allowed":
                # Outside their need to know: they may open it only by stating why (break_glass.py).
                return page(request, "break_glass.html", status_code=403, visit=visit, case_id=case_id, said="")
            row = _checked(visit.principal, found, Page.case)
            file = await case_file(session, row)
        await record_case_read(
            context.uow, visit.principal, school_id=row.school_id, case_id=case_id, at=context.clock()
        )
        may_act = may_see_case(visit.principal, facts(row), page=Page.case_command) == "allowed"
        return page(request, "case.html", visit=visit, file=file, may_act=may_act, said="", now=context.clock())

    @router.post("/cases/{case_id}/commands")
    async def case_command(request: Request, case_id: str) -> Response:
        visit = await signed_in(context, request)
        form = await form_with_csrf(request, visit.csrf_token)
        row = await allowed_case(visit, case_id, Page.case_command)
        name = form.get("command", "")
        if name not in COMMAND_FIELDS:
            raise HTTPException(status_code=400, detail="Unknown command.")
        document = commands.document(
            name, case_id=case_id, school_id=row.school_id, principal=visit.principal, form=form
        )
        reply = await commands.send(document)
        if wants_json(request):  # a queued send from the device: the answer, not a page
            said = {"ok": bool(reply.get("ok")), "error": str(reply.get("error", ""))}
            status = 200 if reply.get("ok") else 503 if reply.get("code") == "unavailable" else 409
            return JSONResponse(said, status_code=status)
        if reply.get("ok"):
            version = reply.get("version")
            after = f"?seen={version}" if isinstance(version, int) else ""
            return RedirectResponse(f"/cases/{case_id}{after}", status_code=303)
        async with scope(visit.principal) as session:
            file = await case_file(session, row)
        return page(
            request,
            "case.html",
            status_code=409,
            visit=visit,
            file=file,
            may_act=True,
            said=str(reply.get("error", "refused")),
            now=context.clock(),
        )

    @router.get("/my-reports")
    async def my_reports(request: Request) -> Response:
        visit = await signed_in(context, request)
        async with scope(visit.principal) as session:
            rows = await case_rows(session)
        mine = [
            r
            for r in rows
            if r.reporter_person_id == visit.principal.person_id
            and visit.principal.person_id not in (r.subject_person_ids or ())
        ]
        return page(request, "my_reports.html", visit=visit, cases=sorted(mine, key=inbox_order))

    @router.get("/people")
    async def people(request: Request) -> Response:
        visit = await signed_in(context, request)
        _require(visit.principal, Page.people)
        async with scope(visit.principal) as session:
            rows = await account_rows(session)
        return page(request, "people.html", visit=visit, accounts=rows)

    return router
