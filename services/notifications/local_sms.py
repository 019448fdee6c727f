"""A local stand-in for a Twilio-style SMS API: checks what a real provider would and keeps what it gets.

Run: `python -m services.notifications.local_sms` (SAFEGUARD_SMS_PORT, SAFEGUARD_SMS_ACCOUNT_SID,
SAFEGUARD_SMS_AUTH_TOKEN, SAFEGUARD_SMS_SINK_FILE). A repeated Idempotency-Key gets the first message back (no second
SMS), as providers with idempotency keys do. Messages are appended to a JSON-lines file (0600:
it holds phone numbers) and listed at GET /messages. Loopback only.

A message given a `StatusCallback` gets its statuses posted there as Twilio does (form fields, signed
`X-Twilio-Signature`): `sent`, then `delivered` — or `undelivered` (error 30003, handset unreachable) for
numbers starting `UNDELIVERED_PREFIX`. A 5xx or unreachable callback is tried again a few times.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Form, Header
from fastapi.responses import JSONResponse

from services.notifications.channels.sms import one_segment
from services.notifications.receipts import provider_signature
from shared.contacts import e164

# Numbers the fake refuses the way a provider refuses an invalid 'To' (Twilio error 21211).
UNREACHABLE_PREFIX = "+1555000"
# Numbers it accepts but cannot deliver to (status `undelivered`, Twilio error 30003).
UNDELIVERED_PREFIX = "+1555001"
CALLBACK_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)


def create_fake_provider(*, account_sid: str, auth_token: str, sink_file: Path | None = None) -> FastAPI:
    """The fake provider's app; `app.state.messages` holds every accepted message."""
    app = FastAPI(title="Local SMS provider")
    app.state.messages = []
    app.state.by_key = {}  # Idempotency-Key -> the message it created
    app.state.repeats = 0
    app.state.callbacks = []  # (status, HTTP answer) for each status callback made
    app.state.tasks = set()
    expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()

    def refuse(status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)

    @app.post("/2010-04-01/Accounts/{sid}/Messages.json", status_code=201, response_model=None)
    async def create_message(
        sid: str,
        to: Annotated[str, Form(alias="To")],
        sender: Annotated[str, Form(alias="From")],
        body: Annotated[str, Form(alias="Body")],
        authorization: Annotated[str, Header()] = "",
        idempotency_key: Annotated[str, Header()] = "",
        status_callback: Annotated[str, Form(alias="StatusCallback")] = "",
    ) -> dict[str, Any] | JSONResponse:
        if sid != account_sid or not hmac.compare_digest(authorization.encode(), expected.encode()):
            return refuse(401, 20003, "Authenticate")
        if e164(to) != to or to.startswith(UNREACHABLE_PREFIX):
            return refuse(400, 21211, "The 'To' number is not a valid phone number.")
        if not one_segment(body):
            return refuse(400, 30001, "more than one GSM-7 segment")
        if idempotency_key in app.state.by_key:
            app.state.repeats += 1
            return dict(app.state.by_key[idempotency_key])  # the same message, not a second one
        message = {"sid": f"SM{uuid.uuid4().hex}", "to": to, "from": sender, "body": body, "status": "queued"}
        app.state.messages.append(message)
        if idempotency_key:
            app.state.by_key[idempotency_key] = message
        if sink_file is not None:
            _append(sink_file, message)
        if status_callback:
            task = asyncio.create_task(report_statuses(status_callback, message))
            app.state.tasks.add(task)
            task.add_done_callback(app.state.tasks.discard)
        return message

    async def report_statuses(url: str, message: dict[str, Any]) -> None:
        final = "undelivered" if str(message["to"]).startswith(UNDELIVERED_PREFIX) else "delivered"
        async with httpx.AsyncClient(timeout=5) as http:
            for status in ("sent", final):
                form = {"MessageSid": message["sid"], "MessageStatus": status, "AccountSid": account_sid}
                form |= {"To": message["to"], "From": message["from"]}
                if status == "undelivered":
                    form["ErrorCode"] = "30003"
                await post_status(http, url, form)

    async def post_status(http: httpx.AsyncClient, url: str, form: dict[str, str]) -> None:
        signature = provider_signature(url, form.items(), auth_token=auth_token)
        for wait in (*CALLBACK_RETRIES, None):
            try:
                answer = await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
            except httpx.HTTPError:
                answer = None
            app.state.callbacks.append((form["MessageStatus"], answer.status_code if answer else None))
            if (answer is not None and answer.status_code < 500) or wait is None:
                return
            await asyncio.sleep(wait)  # the provider's own back-off before it tries the callback again

    @app.get("/messages")
    async def messages() -> list[dict[str, Any]]:
        return list(app.state.messages)

    return app


def _append(sink_file: Path, message: dict[str, Any]) -> None:
    sink_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(sink_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a") as handle:
        handle.write(json.dumps(message) + "\n")


def main() -> None:
    import uvicorn

    app = create_fake_provider(
        account_sid=os.environ.get("SAFEGUARD_SMS_ACCOUNT_SID", "AC-local"),
        auth_token=os.environ.get("SAFEGUARD_SMS_AUTH_TOKEN", "local-token"),
        sink_file=Path(os.environ.get("SAFEGUARD_SMS_SINK_FILE", ".safeguard-data/sms.jsonl")),
    )
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("SAFEGUARD_SMS_PORT", "8089")), log_level="warning")


if __name__ == "__main__":
    main()
