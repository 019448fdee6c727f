"""Receipt endpoints: the SMS provider's status callback and the staff service worker's "shown" receipt.

Both answer 204 when the receipt is recorded or changes nothing (a repeat, a status on the way), 403 for a
bad signature or token, 404 for a notification (or provider message id) not known here, and 503 with
Retry-After when the receipt came before the send's own outcome was recorded (the sender tries again).
No log line or response carries the phone number the provider posts back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from services.notifications.links import AckLinks
from services.notifications.receipts import ReceiptOutcome, record_receipt, signature_valid
from services.notifications.store import SqlDeliveries
from shared.unit_of_work import UnitOfWork
from shared.validation import describe

SMS_STATUS_PATH = "/api/v1/sms/status"
RETRY_AFTER_SECONDS = "2"


class PushReceipt(BaseModel):
    notification_id: str = Field(max_length=100)
    token: str = Field(max_length=64)


def receipts_router(
    *,
    uow: UnitOfWork,
    deliveries: SqlDeliveries,
    signer: AckLinks,
    sms_callback_url: str | None,
    sms_auth_token: str,
    clock: Callable[[], datetime],
) -> APIRouter:
    api = APIRouter()

    async def record(notification_id: str, *, channel: str, status: str, provider_id: str, detail: str) -> Response:
        async with uow.begin() as work:
            outcome, events = await record_receipt(
                notification_id,
                session=work.session,
                deliveries=deliveries,
                channel=channel,
                status=status,
                provider_message_id=provider_id,
                detail=detail,
                at=clock(),
            )
            work.emit(events)
        return answer(outcome)

    @api.post(SMS_STATUS_PATH, status_code=204, response_class=Response)
    async def sms_status(
        request: Request,
        n: Annotated[str, Query(max_length=100, description="the notification id the adapter put in the URL")],
        x_twilio_signature: Annotated[str, Header(max_length=100)] = "",
    ) -> Response:
        """A Twilio-style status callback: `MessageSid`, `MessageStatus` (and `ErrorCode`), signed by the provider."""
        if not sms_callback_url:
            raise HTTPException(404, "delivery receipts are not configured")
        form = await request.form()
        params = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
        signed_url = f"{sms_callback_url}?{request.url.query}"
        if not signature_valid(signed_url, params, auth_token=sms_auth_token, presented=x_twilio_signature):
            raise HTTPException(403, "the request is not signed by the SMS provider")
        fields = dict(params)
        status, error = fields.get("MessageStatus", ""), fields.get("ErrorCode", "")
        detail = f"SMS provider reported {status}" + (f" (error {error})" if error else "")
        return await record(n, channel="sms", status=status, provider_id=fields.get("MessageSid", ""), detail=detail)

    # A service worker on another origin (the console's) sends the receipt as text/plain, a request browsers make
    # without a CORS preflight; the body is the same JSON either way, and the token is what proves it.
    @api.post(
        "/api/v1/push/receipts",
        status_code=204,
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": PushReceipt.model_json_schema()} for kind in ("application/json", "text/plain")
                },
            }
        },
    )
    async def push_shown(request: Request) -> Response:
        """The staff service worker showed this push notification (proved by the token the push carried)."""
        try:
            receipt = PushReceipt.model_validate_json(await request.body())
        except ValidationError as error:
            raise HTTPException(422, describe(error)) from None
        if not signer.receipt_valid(receipt.notification_id, receipt.token):
            raise HTTPException(403, "not a receipt token for this notification")
        return await record(receipt.notification_id, channel="push", status="shown", provider_id="", detail="")

    return api


def answer(outcome: ReceiptOutcome) -> Response:
    """The HTTP answer for a receipt's outcome."""
    if outcome == "unknown":
        raise HTTPException(404, "no such message")
    if outcome == "not_sent_yet":
        return Response(status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})
    return Response(status_code=204)
