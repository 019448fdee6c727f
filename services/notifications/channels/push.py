"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), via pywebpush.

A push notification's address is the recipient's person id: it goes to every browser that person has
subscribed. A push service answering 404 or 410 has dropped the subscription, so it is forgotten here too.
The channel keeps one HTTP client session for its lifetime, so sends reuse their connections (and TLS sessions)
to each push service instead of a new handshake per message; `aclose` ends it when the service stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from services.notifications.channels.base import Delivery, DeliveryFailed
from services.notifications.subscriptions import PushSubscription

log = logging.getLogger(__name__)

# RFC 8030 section 5.3: how hard the push service should try to wake a sleeping device.
_PUSH_URGENCY = {"immediate": "high", "high": "high", "medium": "normal", "low": "low"}
_GONE = {404, 410}
_RETRYABLE = {408, 425, 429}
VAPID_LIFETIME_SECONDS = 12 * 3600  # RFC 8292 section 2: no more than 24 hours
# RFC 8292 section 2 lets a token be reused until it expires: one signature per push service an hour, not one per
# message (signing was about a quarter of a send's CPU). Renewed with 11 of its 12 hours still to run.
VAPID_REUSE_SECONDS = 3600


class Subscriptions(Protocol):
    async def for_person(self, person_id: str) -> list[PushSubscription]: ...

    async def remove(self, endpoint: str, *, person_id: str | None = None) -> bool: ...


class WebPushChannel:
    """Encrypts the lock-screen-safe message for each of the person's browsers and posts it to their push service."""

    name = "push"
    # Topic (RFC 8030 section 5.4) replaces a message still queued; the service worker's tag (the notification
    # id) replaces one already shown. A re-send is one notification on the device.
    resend_safe = True

    def __init__(
        self,
        subscriptions: Subscriptions,
        *,
        vapid: Callable[[], Vapid],
        subject: str,
        ttl_seconds: int,
        timeout_seconds: float,
        trust: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`trust`: the TLS context push services are verified with (None: the system's, SSL_CERT_FILE honoured)."""
        self._subscriptions = subscriptions
        self._vapid = vapid
        self._subject = subject
        self._ttl = ttl_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._trust = trust
        self._http: aiohttp.ClientSession | None = None
        self._clock = clock
        self._signed: dict[str, tuple[float, dict[str, str]]] = {}  # audience -> (signed at, headers)

    def _session(self) -> aiohttp.ClientSession:
        """The kept session, made at the first send (a session belongs to the event loop it is made in)."""
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(ssl=self._trust or True)  # True: the default verified context
            self._http = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._http

    @property
    def holds_connections(self) -> bool:
        """Whether a session is open (made by a send, ended by `aclose`)."""
        return self._http is not None and not self._http.closed

    async def aclose(self) -> None:
        """Close the kept connections (the service is stopping); a later send would open a new session."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def send(self, delivery: Delivery) -> str:
        subscriptions = await self._subscriptions.for_person(delivery.address)
        if not subscriptions:
            raise DeliveryFailed("the recipient has no push subscription", retryable=False)
        payload = push_payload(delivery)
        http = self._session()
        posts = (self._post(http, s, payload=payload, delivery=delivery) for s in subscriptions)
        outcomes = await asyncio.gather(*posts)
        sent = [o for o in outcomes if isinstance(o, str)]
        if sent:
            return " ".join(sent)
        failures = [o for o in outcomes if isinstance(o, DeliveryFailed)]
        retryable = any(f.retryable for f in failures)
        raise DeliveryFailed("; ".join(sorted({str(f) for f in failures})), retryable=retryable)

    async def _post(
        self, http: aiohttp.ClientSession, subscription: PushSubscription, *, payload: bytes, delivery: Delivery
    ) -> str | DeliveryFailed:
        """One subscription: its provider message id, or why it failed (never raises, so siblings still go)."""
        headers = {**self._vapid_headers(subscription.endpoint), "Urgency": _PUSH_URGENCY[delivery.message.urgency]}
        topic = delivery.notification_id.replace("-", "")
        if len(topic) <= 32 and topic.isalnum():
            # RFC 8030 section 5.4: a redelivered notification replaces, not adds to, one still waiting.
            headers["Topic"] = topic
        try:
            pusher = WebPusher(subscription.as_subscription_info(), aiohttp_session=http)
            response = await pusher.send_async(payload, headers, ttl=self._ttl, timeout=self._timeout)
        except WebPushException as error:
            return DeliveryFailed(f"push subscription unusable: {error.message}", retryable=False)
        except (aiohttp.ClientError, TimeoutError) as error:
            return DeliveryFailed(f"push service unreachable: {type(error).__name__}", retryable=True)
        assert not isinstance(response, str)  # only curl=True returns text
        status = response.status
        if status in (200, 201, 202):
            return response.headers.get("Location") or f"push:{status}"
        if status in _GONE:
            await self._subscriptions.remove(subscription.endpoint)
            log.info("push subscription gone (HTTP %s) for notification %s: removed", status, delivery.notification_id)
            return DeliveryFailed(f"push subscription gone (HTTP {status})", retryable=False)
        return DeliveryFailed(f"push service refused (HTTP {status})", retryable=status >= 500 or status in _RETRYABLE)

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        """RFC 8292 section 2: a JWT whose audience is the push service's origin, signed with our key (reused
        for up to an hour per push service)."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = self._clock()
        signed = self._signed.get(audience)
        if signed is None or not 0 <= now - signed[0] < VAPID_REUSE_SECONDS:
            claims: dict[str, str | int] = {"aud": audience, "sub": self._subject}
            claims["exp"] = int(now) + VAPID_LIFETIME_SECONDS
            if len(self._signed) >= 64:  # a handful of push services in practice; never an unbounded map
                self._signed.clear()
            signed = self._signed[audience] = (now, dict(self._vapid().sign(claims)))
        return dict(signed[1])


def push_payload(delivery: Delivery) -> bytes:
    """What the service worker shows: title, body and where a tap goes; the same lock-screen-safe words."""
    message = delivery.message
    body: dict[str, object] = {
        "title": message.title,
        "body": message.body,
        "url": message.ack_url if message.with_link else "",
        "tag": delivery.notification_id,
    }
    if message.receipt_token:
        # The service worker posts this back when it shows the notification: delivered, not just sent.
        body["receipt"] = {"url": message.receipt_url, "token": message.receipt_token}
    return json.dumps(body, separators=(",", ":")).encode()
