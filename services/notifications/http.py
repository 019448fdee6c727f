"""Notifications' HTTP: the acknowledgement link a recipient opens (GET shows a button, POST acknowledges).

A POST must come from the page the link opened: it returns that page's `page_check`, and a browser's
Origin (or Referer) must be this service's or the console's. An expired link says so and offers sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from services.notifications import ack_pages
from services.notifications.handlers import acknowledge
from services.notifications.links import AckLinks, LinkState
from services.notifications.store import SqlDeliveries as Deliveries
from shared.unit_of_work import UnitOfWork

Token = Annotated[str, Query(min_length=8, max_length=64, description="the token from the notification's link")]


class Acknowledged(BaseModel):
    notification_id: str
    acknowledged: bool
    already: bool


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_site(request: Request, *, console_url: str, origin: str | None, referer: str | None) -> bool:
    """Whether the browser says the POST came from our own pages (no header at all: not a browser form)."""
    claimed = origin if origin and origin != "null" else (_origin(referer) if referer else None)
    if claimed is None:
        return origin is None
    return claimed.lower() in {_origin(console_url), _origin(str(request.base_url))}


def router(
    *,
    uow: UnitOfWork,
    deliveries: Deliveries,
    signer: AckLinks,
    clock: Callable[[], datetime],
    console_url: str = "/",
) -> APIRouter:
    api = APIRouter()

    async def link_state(notification_id: str, token: str) -> LinkState:
        async with uow.sessions() as session:
            row = await deliveries.get(session, notification_id)
        if row is None:
            return "invalid"  # the same answer as a bad token: a link reveals nothing about other notifications
        return signer.check(notification_id, token, person_id=row.recipient_person_id, now=clock())

    @api.get("/api/v1/notifications/{notification_id}/ack", response_class=HTMLResponse)
    async def ack_page(notification_id: str, token: Token) -> HTMLResponse:
        """The page a link opens: one button (opening a link, or a mail scanner fetching it, never acknowledges)."""
        state = await link_state(notification_id, token)
        if state == "expired":
            return HTMLResponse(ack_pages.expired_page(sign_in_url=console_url), status_code=410)
        if state == "invalid":
            raise HTTPException(403, "this acknowledgement link is not valid")
        check = signer.page_check(notification_id, token)
        page = ack_pages.confirm_page(notification_id=notification_id, token=token, page_check=check)
        return HTMLResponse(page, headers={"Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"})

    @api.post("/api/v1/notifications/{notification_id}/ack", response_model=Acknowledged)
    async def ack(
        request: Request,
        notification_id: str,
        token: Token,
        page_check: Annotated[str, Form(max_length=64)] = "",
        origin: Annotated[str | None, Header()] = None,
        referer: Annotated[str | None, Header()] = None,
        accept: Annotated[str, Header()] = "",
    ) -> Response:
        """Acknowledge a notification from its link's page; stops its escalation. Repeating it changes nothing."""
        from_our_page = page_check == signer.page_check(notification_id, token)
        if not (from_our_page and same_site(request, console_url=console_url, origin=origin, referer=referer)):
            raise HTTPException(403, "acknowledge from the page the link opens")
        state = await link_state(notification_id, token)
        if state == "expired":
            return HTMLResponse(ack_pages.expired_page(sign_in_url=console_url), status_code=410)
        if state == "invalid":
            raise HTTPException(403, "this acknowledgement link is not valid")
        async with uow.begin() as work:
            found, events = await acknowledge(notification_id, session=work.session, deliveries=deliveries, at=clock())
            work.emit(events)
        if not found:
            raise HTTPException(404, "no such notification")
        if "text/html" in accept:
            return HTMLResponse(ack_pages.done_page(already=not events))
        return JSONResponse(
            Acknowledged(notification_id=notification_id, acknowledged=True, already=not events).model_dump()
        )

    @api.get("/n/{notification_id}", include_in_schema=False)
    async def short_link(notification_id: str, t: Token) -> RedirectResponse:
        """The SMS form of the link (fewer characters): the same page."""
        return RedirectResponse(f"/api/v1/notifications/{quote(notification_id)}/ack?token={quote(t)}", status_code=303)

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
