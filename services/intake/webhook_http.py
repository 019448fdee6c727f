"""`POST /api/v1/forms/{source}`: a signed form webhook; a bad signature is a kept refused attempt, not a concern."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import APIRouter, Header, HTTPException
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from services.intake.door import content_key, escape_unstorable
from services.intake.gate import Gate
from services.intake.http import ANSWERS, ConcernAccepted, answer, refusal_doc, request_body
from services.intake.tables import webhook_attempts
from services.intake.webhooks import FormMapping, form_parser, load_mapping, verify
from shared.contracts.concern import Channel
from shared.settings import Settings
from shared.unit_of_work import UnitOfWork

JSON = frozenset({"application/json"})
TIMESTAMP_HEADER = "X-Safeguard-Timestamp"
SIGNATURE_HEADER = "X-Safeguard-Signature"


class WebhookSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    school_id: str
    mapping: str


@dataclass(frozen=True)
class Source:
    """One configured webhook source: its school, mapping and secret."""

    school_id: str
    mapping: FormMapping
    secret: str | None


def load_sources(settings: Settings) -> dict[str, Source]:
    """The webhook sources the settings name (none when the file is absent)."""
    path = Path(settings.intake_webhook_sources_file)
    if not path.is_file():
        return {}
    listed = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("sources") or {}
    sources = {}
    for name, entry in listed.items():
        source = WebhookSource.model_validate(entry)
        mapping = load_mapping(path.parent / source.mapping)
        sources[name] = Source(source.school_id, mapping, settings.intake_webhook_secrets.get(name))
    return sources


async def keep_refused_attempt(
    uow: UnitOfWork,
    *,
    source: str,
    school_id: str,
    received_at: datetime,
    reason: str,
    timestamp: str | None,
    body: bytes,
) -> uuid.UUID:
    """Keep a refused attempt (bytes and reason) for review; it is not an input and nothing is published."""
    attempt_id = uuid.uuid4()
    async with uow.begin() as work:
        await work.session.execute(
            webhook_attempts.insert().values(
                attempt_id=attempt_id,
                source=source,
                school_id=school_id,
                received_at=received_at,
                reason=reason,
                signature_timestamp=escape_unstorable(timestamp[:40]) if timestamp else None,
                body=body,
            )
        )
    return attempt_id


def router(
    *,
    gate: Gate,
    sources: dict[str, Source],
    uow: UnitOfWork,
    tolerance: float,
    clock: Callable[[], datetime],
) -> APIRouter:
    """The signed form webhook route."""
    api = APIRouter()
    refusals = {**ANSWERS, 401: refusal_doc("Bad or stale signature: kept as a refused attempt, not a report.")}

    @api.post(
        "/api/v1/forms/{source}",
        status_code=202,
        response_model=ConcernAccepted,
        responses=refusals,
        openapi_extra=request_body("application/json", {"type": "object"}),
        summary="A form tool's signed webhook (Microsoft Forms via Power Automate, Google Forms via Apps Script)",
    )
    async def form_webhook(
        request: Request,
        source: Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")],
        timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> JSONResponse:
        """Verify the signature over `timestamp.body`, then keep and map the payload as a concern."""
        configured = sources.get(source)
        if configured is None:
            raise HTTPException(404, f"unknown form source {source!r}")
        arrival = await gate.arrive(request)
        reason = verify(
            configured.secret,
            timestamp=timestamp,
            signature=signature,
            body=arrival.body.data,
            now=time.time(),
            tolerance=tolerance,
        )
        if arrival.body.truncated:
            reason = f"too large to verify: at most {arrival.limit} bytes"
        if reason is not None:
            attempt_id = await keep_refused_attempt(
                uow,
                source=source,
                school_id=configured.school_id,
                received_at=clock(),
                reason=reason,
                timestamp=timestamp,
                body=arrival.body.data,
            )
            body: dict[str, object] = {
                "detail": reason,
                "errors": [],
                "raw_input_id": None,
                "attempt_id": str(attempt_id),
            }
            return JSONResponse(body, status_code=413 if arrival.body.truncated else 401)
        admission = await gate.keep(
            arrival,
            school_id=configured.school_id,
            channel=Channel.webhook,
            parse=form_parser(configured.mapping),
            accepts=JSON,
            idempotency_key=content_key(arrival.body.data),  # a form tool's retry of one response is one concern
        )
        return answer(admission)

    return api
