"""Push subscriptions asked for by the console over NATS request/reply, on behalf of the signed-in person.

A request names no person. It carries `assertion`, an actor token (shared/actor_tokens.py) for audience
`notifications`, signed by the console, the component that signed the person in: the subscription is kept for
the token's person, and only that person's own can be removed. The token is good once (its id is claimed in the
same transaction as the change), so a copied request cannot be sent again. `key` (the VAPID public key browsers
subscribe with) is public and needs no assertion. The store is the one the push channel reads
(subscriptions.py), so an alert for that person reaches this browser.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats.message import NatsMessage
from pydantic import ValidationError

from services.notifications.push_http import BrowserSubscription
from services.notifications.subscriptions import PushSubscription, remove_subscription, save_subscription
from shared.actor_tokens import ActorClaims, ActorVerifier, TokenRefused
from shared.runtime import ServiceRuntime
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

AUDIENCE = "notifications"
# Only the component that signs staff in may say which person this browser belongs to.
ISSUERS = frozenset({"console"})
# The inbox "consumer" under which used assertion ids are kept: a second use is a replay.
USED_ASSERTIONS = "notifications-push-assertions"
PUSH_QUEUE = "notifications-push"
ACTIONS = ("key", "subscribe", "unsubscribe")


class PushRefused(Exception):
    """The request cannot be done; `code` is a word for machines, `reason` a sentence for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def refused(code: str, error: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "error": error}


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PushRefused("invalid", "the request is not JSON") from None
    if not isinstance(document, dict) or document.get("action") not in ACTIONS:
        raise PushRefused("invalid", f"the request must be a JSON object whose action is one of {', '.join(ACTIONS)}")
    return document


@dataclass
class PushRequests:
    """Answers the console's push requests: the key, subscribe and unsubscribe."""

    uow: UnitOfWork
    verifier: ActorVerifier
    application_server_key: Callable[[], str]
    clock: Callable[[], datetime]

    def claims(self, document: dict[str, Any], *, now: datetime) -> ActorClaims:
        """Who asks: a well-signed, in-date assertion for notifications, from the console."""
        if "person_id" in document or "actor" in document:
            raise PushRefused("claimed_actor", "a request may not name its person: it must carry a signed assertion")
        try:
            claims = self.verifier.verify(document.get("assertion"), now=now)
        except TokenRefused as refusal:
            raise PushRefused(refusal.code, refusal.reason) from None
        if claims.issuer not in ISSUERS:
            raise PushRefused("not_permitted", f"{claims.issuer} may not subscribe browsers for people")
        return claims

    async def answer(self, body: bytes) -> dict[str, Any]:
        """`{"ok": true, ...}` once done, or `{"ok": false, "code", "error"}` with nothing changed."""
        now = self.clock()
        try:
            document = _document(body)
            if document["action"] == "key":
                return {"ok": True, "application_server_key": self.application_server_key()}
            claims = self.claims(document, now=now)
            return {"ok": True, **await self._change(document, claims=claims, now=now)}
        except PushRefused as refusal:
            log.warning("push request refused (%s)", refusal.code)
            return refused(refusal.code, refusal.reason)

    async def _change(self, document: dict[str, Any], *, claims: ActorClaims, now: datetime) -> dict[str, Any]:
        subscribing = document["action"] == "subscribe"
        try:
            if subscribing:
                browser = BrowserSubscription.model_validate(document.get("subscription"))
                endpoint = browser.endpoint
            else:
                endpoint = str(document.get("endpoint") or "")
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise PushRefused("invalid", f"the subscription is not usable ({where}: {problem['msg']})") from None
        async with self.uow.begin() as work:
            if not await work.claim(USED_ASSERTIONS, [claims.token_id]):
                raise PushRefused("replayed", "this assertion was already used: each request needs a fresh one")
            if subscribing:
                keys = browser.keys
                kept = PushSubscription(endpoint, p256dh=keys.p256dh, auth=keys.auth)
                await save_subscription(work.session, kept, person_id=claims.person_id, at=now)
                return {"subscribed": True}
            removed = await remove_subscription(work.session, endpoint, person_id=claims.person_id)
        if not removed:
            raise PushRefused("not_found", "this browser has no subscription for you")
        return {"subscribed": False}


def register_push_requests(runtime: ServiceRuntime, requests: PushRequests) -> None:
    """Answer the console's push requests in a queue group (any instance may)."""

    @runtime.broker.subscriber(
        runtime.subjects.notifications_push,
        queue=PUSH_QUEUE,
        title="notifications-push",
        description="Subscribe or unsubscribe a browser to a signed-in person's push alerts, for the console",
    )
    async def on_push_request(body: Any, message: NatsMessage = Context("message")) -> dict[str, Any]:
        try:
            return await requests.answer(message.body)
        except Exception:
            log.exception("a push request could not be answered")
            return refused("unavailable", "the subscription could not be changed just now; try again")
