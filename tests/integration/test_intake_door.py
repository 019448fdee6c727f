"""The JSON door refuses clearly and keeps everything: NUL, oversize, wrong type, bursts; its contract is readable."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.intake.app import create_app
from services.intake.store import raw_inputs
from shared.db import transaction
from shared.settings import Settings
from tests.support.factories import report_json
from tests.support.intake import one_school
from tests.support.running import running

pytestmark = pytest.mark.integration
URL = "/api/v1/schools/st-marks/concerns"
LIMIT = 256 * 1024


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return one_school(settings, tmp_path, intake_max_body_bytes=LIMIT)


async def kept(runtime) -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(raw_inputs))).all())


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")


def resident_bytes() -> int:
    """This process's resident memory now, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_a_nul_in_a_field_is_a_422_naming_the_field_and_the_raw_input_is_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    body = json.dumps(report_json(summary="bad \u0000 byte")).encode()
    async with running(runtime, subscribers=False), client(app) as http:
        first = await http.post(URL, content=body, headers={"content-type": "application/json", "idempotency-key": "k"})
        again = await http.post(URL, content=body, headers={"content-type": "application/json", "idempotency-key": "k"})
        [raw] = await kept(runtime)
    assert first.status_code == 422 and [e["field"] for e in first.json()["errors"]] == ["summary"]
    assert again.status_code == 422  # the same key never gives a 500
    assert raw.body == body and raw.status == "rejected" and "summary" in raw.rejection_reason


async def test_a_400_mb_body_is_cut_while_streaming_answered_413_and_its_start_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    chunk = b"{" + b"x" * (64 * 1024 - 1)
    total = 400 * 1024 * 1024
    pulled = 0

    async def endless_upload() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(total // len(chunk)):
            pulled += 1
            yield chunk

    async with running(runtime, subscribers=False), client(app) as http:
        before = resident_bytes()
        response = await http.post(URL, content=endless_upload(), headers={"content-type": "application/json"})
        grown = resident_bytes() - before
        print(f"RSS grew {grown} bytes on a 400 MB upload; {pulled} chunks pulled")
        [raw] = await kept(runtime)
    assert response.status_code == 413 and "too large" in response.json()["detail"]
    assert response.json()["raw_input_id"] == str(raw.raw_input_id)
    assert pulled <= LIMIT // len(chunk) + 1  # the rest of the 400 MB was never read
    assert grown < 32 * 1024 * 1024, f"memory grew by {grown} bytes"
    assert len(raw.body) == LIMIT and raw.body == (chunk * 5)[:LIMIT] and raw.status == "rejected"


async def test_text_plain_is_a_415_and_the_body_is_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    body = json.dumps(report_json()).encode()
    async with running(runtime, subscribers=False), client(app) as http:
        response = await http.post(URL, content=body, headers={"content-type": "text/plain"})
        [raw] = await kept(runtime)
    assert response.status_code == 415 and "application/json" in response.json()["detail"]
    assert (raw.body, raw.content_type, raw.status) == (body, "text/plain", "rejected")


async def test_a_burst_of_300_from_one_client_meets_429s_with_retry_after_and_every_body_is_kept(
    settings: Settings,
) -> None:
    app, runtime = create_app(settings.model_copy(update={"intake_rate_burst": 60, "intake_rate_per_second": 1.0}))
    bodies = [json.dumps(report_json(summary=f"burst report {n}")).encode() for n in range(300)]
    async with running(runtime, subscribers=False), client(app) as http:
        responses = await asyncio.gather(
            *[http.post(URL, content=b, headers={"content-type": "application/json"}) for b in bodies]
        )
        rows = await kept(runtime)
    limited = [r for r in responses if r.status_code == 429]
    assert 200 <= len(limited) <= 245
    assert {r.status_code for r in responses} == {202, 429}
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert sorted(row.body for row in rows) == sorted(bodies)
    assert {row.raw_input_id for row in rows} >= {uuid.UUID(r.json()["raw_input_id"]) for r in limited}


async def test_the_openapi_document_is_self_contained_and_documents_every_refusal(settings: Settings) -> None:
    app, _ = create_app(settings)
    async with client(app) as http:
        document = (await http.get("/openapi.json")).json()
    text = json.dumps(document)
    assert "$defs" not in text
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in document["components"]["schemas"]
    operation = document["paths"]["/api/v1/schools/{school_id}/concerns"]["post"]
    assert {"200", "202", "404", "413", "415", "422", "429"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]


async def test_fastapis_own_422_has_the_concern_rejected_shape(settings: Settings) -> None:
    app, _ = create_app(settings)
    async with client(app) as http:
        response = await http.post("/api/v1/schools/Not_A_School!/concerns", json=report_json())
    assert response.status_code == 422
    assert set(response.json()) == {"detail", "errors", "raw_input_id"}
    assert response.json()["errors"][0]["field"] == "path.school_id"
