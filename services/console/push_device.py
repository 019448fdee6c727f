"""This device's push subscription: `/me/device` lets a signed-in person get alerts on this browser, or stop them.

The browser subscribes itself (`pushManager.subscribe` with notifications' VAPID public key, static/push.js) and
hands the subscription to the console, which sends it to notifications over NATS request/reply with a fresh actor
token for audience `notifications` naming the signed-in person: notifications keeps it for that person (the same
store its push channel reads) and refuses a token it has seen before. Once notifications has done it, the change
is recorded as `account.changed` (push_subscribed / push_unsubscribed) with the person as the actor; the endpoint
itself, a capability URL, is never recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from services.console.access import Page, Principal, may_open
from services.console.admin_store import account_changed
from services.console.commands import vouch
from services.console.web import Context, Visit, form_with_csrf, page, signed_in, wants_json
from shared.contracts.account_events import AccountChange

log = logging.getLogger(__name__)

AUDIENCE = "notifications"
Ask = Callable[[bytes], Awaitable[bytes]]
UNAVAILABLE = {"ok": False, "code": "unavailable", "error": "notifications did not answer; try again"}
# What notifications' refusals mean to the browser: fix the request, or try again later.
STATUS = {"invalid": 400, "not_found": 404, "unavailable": 503}
CHANGES: dict[str, AccountChange] = {"subscribe": "push_subscribed", "unsubscribe": "push_unsubscribed"}


class PushDoor:
    """Notifications' push requests, as the console sends them for the signed-in person."""

    def __init__(self, ask: Ask, *, key: Ed25519PrivateKey, clock: Callable[[], datetime]) -> None:
        self._ask = ask
        self._key = key
        self._clock = clock

    def assertion(self, principal: Principal) -> str:
        """A fresh token saying the console signed this person in, for notifications only."""
        return vouch(principal, key=self._key, audience=AUDIENCE, now=self._clock())

    async def send(self, document: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = json.loads(await self._ask(json.dumps(document).encode()))
        except Exception as error:  # a timeout or no responder: say so, never the subscription
            log.warning("push %s got no answer: %s", document.get("action"), type(error).__name__)
            return dict(UNAVAILABLE)
        return answer if isinstance(answer, dict) else {"ok": False, "code": "invalid", "error": "unreadable answer"}

    async def server_key(self) -> str:
        """The VAPID public key browsers subscribe with; empty when notifications cannot say."""
        answer = await self.send({"action": "key"})
        return str(answer.get("application_server_key") or "") if answer.get("ok") else ""

    async def change(self, principal: Principal, action: str, **fields: Any) -> dict[str, Any]:
        """Subscribe or unsubscribe a browser for this person: notifications' answer."""
        return await self.send({"action": action, **fields, "assertion": self.assertion(principal)})


def _request_fields(form: dict[str, str], action: str) -> dict[str, Any]:
    """What notifications needs for `action`, from the posted form; 400 when it is not there."""
    if action == "unsubscribe":
        endpoint = form.get("endpoint", "")
        if not endpoint:
            raise HTTPException(status_code=400, detail="Which browser? The request names no push endpoint.")
        return {"endpoint": endpoint}
    try:
        subscription = json.loads(form.get("subscription", ""))
    except ValueError:
        raise HTTPException(status_code=400, detail="This browser sent no usable push subscription.") from None
    return {"subscription": subscription}


def push_device_router(context: Context, *, push: PushDoor) -> APIRouter:
    router = APIRouter()

    async def visitor(request: Request) -> Visit:
        visit = await signed_in(context, request)
        if not may_open(visit.principal, Page.device):
            raise HTTPException(status_code=403, detail="Your role does not let you open this.")
        return visit

    async def device_page(request: Request, visit: Visit, *, status_code: int = 200, said: str = "") -> Response:
        key = await push.server_key()
        return page(
            request,
            "me_device.html",
            status_code=status_code,
            visit=visit,
            server_key=key,
            said=said,
            status_ok=status_code == 200,
        )

    @router.get("/me/device")
    async def device(request: Request) -> Response:
        return await device_page(request, await visitor(request))

    @router.post("/me/device/push")
    async def change(request: Request) -> Response:
        visit = await visitor(request)
        form = await form_with_csrf(request, visit.csrf_token)
        action = form.get("action", "")
        if action not in CHANGES:
            raise HTTPException(status_code=400, detail="Subscribe or unsubscribe?")
        try:
            fields = _request_fields(form, action)
        except HTTPException as refusal:
            if wants_json(request):
                return JSONResponse({"ok": False, "error": refusal.detail}, status_code=refusal.status_code)
            return await device_page(request, visit, status_code=refusal.status_code, said=str(refusal.detail))
        answer = await push.change(visit.principal, action, **fields)
        if answer.get("ok"):
            event = account_changed(visit.principal, change=CHANGES[action], by=visit.principal, now=context.clock())
            async with context.uow.begin() as work:
                work.emit([event])
            said = "This device will get alerts." if action == "subscribe" else "This device will get no more alerts."
            status = 200
        else:
            said, status = str(answer.get("error") or "refused"), STATUS.get(str(answer.get("code")), 409)
        if wants_json(request):
            return JSONResponse({"ok": bool(answer.get("ok")), "error": "" if status == 200 else said}, status)
        return await device_page(request, visit, status_code=status, said=said)

    return router
