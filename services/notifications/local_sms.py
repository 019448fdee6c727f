"""A local stand-in for a Twilio-style SMS API: checks what a real provider would and keeps what it gets.

Run: `python -m services.notifications.local_sms` (SAFEGUARD_SMS_PORT, SAFEGUARD_SMS_ACCOUNT_SID,
SAFEGUARD_SMS_AUTH_TOKEN, SAFEGUARD_SMS_SINK_FILE). A repeated Idempotency-Key gets the first message back (no second
SMS), as providers with idempotency keys do. Messages are appended to a JSON-lines file (0600:
it holds phone numbers) and listed at GET /messages. Loopback only.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Header
from fastapi.responses import JSONResponse

from services.notifications.channels.sms import e164, one_segment

# Numbers the fake refuses the way a provider refuses an invalid 'To' (Twilio error 21211).
UNREACHABLE_PREFIX = "+1555000"


def create_fake_provider(*, account_sid: str, auth_token: str, sink_file: Path | None = None) -> FastAPI:
    """The fake provider's app; `app.state.messages` holds every accepted message."""
    app = FastAPI(title="Local SMS provider")
    app.state.messages = []
    app.state.by_key = {}  # Idempotency-Key -> the message it created
    app.state.repeats = 0
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
        return message

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
