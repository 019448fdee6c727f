"""Notifications' HTTP: the acknowledgement link a recipient opens (GET shows a button, POST acknowledges)."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.notifications.handlers import AckSigner, acknowledge
from services.notifications.store import SqlDeliveries
from shared.unit_of_work import UnitOfWork

Token = Annotated[str, Query(min_length=8, max_length=64, description="the token from the notification's link")]


class Acknowledged(BaseModel):
    notification_id: str
    acknowledged: bool
    already: bool


def router(
    *,
    uow: UnitOfWork,
    deliveries: SqlDeliveries,
    signer: AckSigner,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter()

    def check(notification_id: str, token: str) -> None:
        if not signer.valid(notification_id, token):
            raise HTTPException(403, "this acknowledgement link is not valid")

    @api.get("/api/v1/notifications/{notification_id}/ack", response_class=HTMLResponse)
    async def ack_page(notification_id: str, token: Token) -> str:
        """A page with one button: opening a link (or a mail scanner fetching it) never acknowledges."""
        check(notification_id, token)
        safe_id, safe_token = html.escape(notification_id), html.escape(token)
        return (
            "<!doctype html><meta name=viewport content='width=device-width'><title>Acknowledge</title>"
            f"<form method=post action='/api/v1/notifications/{safe_id}/ack?token={safe_token}'>"
            "<p>Acknowledge that you have seen this safeguarding concern and are acting on it.</p>"
            "<button type=submit>Acknowledge</button></form>"
        )

    @api.post("/api/v1/notifications/{notification_id}/ack", response_model=Acknowledged)
    async def ack(notification_id: str, token: Token) -> Acknowledged:
        """Acknowledge a notification; stops its escalation. Repeating it changes nothing."""
        check(notification_id, token)
        async with uow.begin() as work:
            found, events = await acknowledge(notification_id, session=work.session, deliveries=deliveries, at=clock())
            work.emit(events)
        if not found:
            raise HTTPException(404, "no such notification")
        return Acknowledged(notification_id=notification_id, acknowledged=True, already=not events)

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
