"""Push HTTP: the installable staff page, its service worker, and subscribe / unsubscribe.

Until staff sign-in exists (trust-boundaries issue), a request names its person by proof it can hold:
the notification id and token of an acknowledgement link sent to that person (the page is opened from
such a link), or, when `SAFEGUARD_PUSH_OPERATOR_TOKEN` is set, that token as a bearer plus a person id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib.resources import files
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, Field, field_validator

from services.notifications.subscriptions import PushSubscription, SqlPushSubscriptions

# (notification id, link token) -> the person that link was sent to, or None when it is not valid.
IdentifyLinkHolder = Callable[[str, str], Awaitable[str | None]]

_STATIC = files("services.notifications") / "static"
_ASSETS = {
    "manifest.json": "application/manifest+json",
    "sw.js": "text/javascript",
    "push-alerts.js": "text/javascript",
    "staff.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"}


def _b64url(value: str, *, length: int, what: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{what} is not base64url") from error
    if len(raw) != length:
        raise ValueError(f"{what} must be {length} bytes")
    return value


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(max_length=120)
    auth: str = Field(max_length=40)

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        _b64url(value, length=65, what="p256dh")
        if base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 point")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        return _b64url(value, length=16, what="auth")


class BrowserSubscription(BaseModel):
    """PushSubscription.toJSON() as the browser gives it."""

    endpoint: str = Field(max_length=2048)
    keys: SubscriptionKeys

    @field_validator("endpoint")
    @classmethod
    def _push_service(cls, value: str) -> str:
        if not is_push_endpoint(value):
            raise ValueError("a push endpoint is an https URL")
        return value


class Proof(BaseModel):
    notification_id: str = Field(default="", max_length=100)
    token: str = Field(default="", max_length=100)
    person_id: str = Field(default="", max_length=100, description="with the operator token only")


class SubscribeRequest(Proof):
    subscription: BrowserSubscription


class UnsubscribeRequest(Proof):
    endpoint: str = Field(max_length=2048)


class Subscribed(BaseModel):
    person_id: str


def is_push_endpoint(url: str) -> bool:
    """https anywhere; plain http only to this machine (a local push service in development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        return parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def push_router(
    *,
    subscriptions: SqlPushSubscriptions,
    identify: IdentifyLinkHolder,
    application_server_key: Callable[[], str],
    operator_token: str | None,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter()

    async def person_for(proof: Proof, authorization: str | None) -> str:
        if authorization and operator_token:
            presented = authorization.removeprefix("Bearer ").strip()
            if hmac.compare_digest(presented.encode(), operator_token.encode()) and proof.person_id:
                return proof.person_id
            raise HTTPException(403, "the operator token is not valid, or no person id was given")
        person = await identify(proof.notification_id, proof.token) if proof.token else None
        if person is None:
            raise HTTPException(403, "open this page from a current Safeguard alert link")
        return person

    @api.get("/staff/", include_in_schema=False)
    async def staff_page() -> Response:
        html = (_STATIC / "staff.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @api.get("/staff/{asset}", include_in_schema=False)
    async def staff_asset(asset: str) -> Response:
        if asset not in _ASSETS:
            raise HTTPException(404)
        return Response(
            (_STATIC / asset).read_bytes(), media_type=_ASSETS[asset], headers={"Cache-Control": "no-cache"}
        )

    @api.get("/api/v1/push/key")
    async def push_key() -> dict[str, str]:
        """The VAPID public key browsers subscribe with (PushManager.subscribe's applicationServerKey)."""
        return {"application_server_key": application_server_key()}

    @api.post("/api/v1/push/subscriptions", status_code=201, response_model=Subscribed)
    async def subscribe(request: SubscribeRequest, authorization: Annotated[str | None, Header()] = None) -> Subscribed:
        """Let this browser receive the person's alerts."""
        person_id = await person_for(request, authorization)
        browser = request.subscription
        subscription = PushSubscription(browser.endpoint, p256dh=browser.keys.p256dh, auth=browser.keys.auth)
        await subscriptions.save(subscription, person_id=person_id, at=clock())
        return Subscribed(person_id=person_id)

    @api.delete("/api/v1/push/subscriptions", status_code=204)
    async def unsubscribe(request: UnsubscribeRequest, authorization: Annotated[str | None, Header()] = None) -> None:
        """Stop alerts to this browser (only the person's own subscriptions can be removed)."""
        person_id = await person_for(request, authorization)
        if not await subscriptions.remove(request.endpoint, person_id=person_id):
            raise HTTPException(404, "no such subscription for this person")

    return api
