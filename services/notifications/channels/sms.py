"""SMS through a Twilio-style HTTP API (POST form To/From/Body, basic auth by account sid and token).

One segment only: 160 characters of the GSM 03.38 basic alphabet. The text is the lock-screen-safe line
and a short link; a phone number never reaches a log line.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import httpx

from services.notifications.channels.base import Delivery, DeliveryFailed
from shared.contacts import e164

log = logging.getLogger(__name__)

SEGMENT = 160
# GSM 03.38 basic character set (the escape table's characters count double, so they are left out).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def one_segment(text: str) -> bool:
    """Whether `text` fits one GSM-7 SMS segment."""
    return len(text) <= SEGMENT and set(text) <= GSM_BASIC


class TwilioStyleSms:
    """Posts one message per notification to `<base>/2010-04-01/Accounts/<sid>/Messages.json`."""

    name = "sms"
    # Every message carries `Idempotency-Key: <notification id>`: a provider that honours it (the local one does)
    # accepts a re-send as the same message; one that does not may send a second identical SMS.
    resend_safe = True

    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        timeout_seconds: float,
        status_callback: str | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._sender = sender
        self._timeout = timeout_seconds
        self._status_callback = status_callback

    async def send(self, delivery: Delivery) -> str:
        number = e164(delivery.address)
        if number is None:
            raise DeliveryFailed(f"not a phone number (notification {delivery.notification_id})", retryable=False)
        text = delivery.message.sms
        if not one_segment(text):
            raise DeliveryFailed("the SMS text does not fit one GSM-7 segment", retryable=False)
        form = {"To": number, "From": self._sender, "Body": text}
        if self._status_callback:
            # The provider posts the message's status here (signed); `n` says which notification it is.
            form["StatusCallback"] = f"{self._status_callback}?{urlencode({'n': delivery.notification_id})}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.post(
                    self._url,
                    data=form,
                    auth=self._auth,
                    headers={"Idempotency-Key": delivery.notification_id},
                )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"SMS provider unreachable: {type(error).__name__}", retryable=True) from error
        if response.status_code in (200, 201):
            return str(response.json().get("sid") or f"sms:{delivery.notification_id}")
        code = _provider_code(response)
        retryable = response.status_code >= 500 or response.status_code == 429
        log.info(
            "SMS refused for notification %s: HTTP %s code %s", delivery.notification_id, response.status_code, code
        )
        raise DeliveryFailed(f"SMS provider refused (HTTP {response.status_code}, code {code})", retryable=retryable)


def _provider_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""
