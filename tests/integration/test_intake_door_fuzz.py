"""Hypothesis at the JSON door: arbitrary bytes never give a 5xx and never leave a raw input stuck in `received`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.intake.app import create_app
from services.intake.store import raw_inputs
from shared.db import transaction
from shared.settings import Settings
from tests.support.factories import report_json
from tests.support.intake import one_school

pytestmark = pytest.mark.integration

texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\u2028", "\ufffd"]), max_size=40)
almost_concerns = st.builds(
    lambda summary, details, extra: json.dumps({**report_json(summary=summary, details=details), **extra}).encode(),
    texts,
    texts,
    st.dictionaries(texts, st.none() | st.integers() | texts, max_size=2),
)
bodies = st.binary(max_size=600) | almost_concerns


def test_arbitrary_bodies_are_answered_and_every_raw_input_is_settled(settings: Settings, tmp_path: Path) -> None:
    app, runtime = create_app(one_school(settings, tmp_path, intake_rate_burst=100_000))
    loop = asyncio.new_event_loop()  # hypothesis calls a plain function; the app runs in this loop throughout
    loop.run_until_complete(runtime.start())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")
    statuses: list[int] = []

    @hypothesis_settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def post(body: bytes) -> None:
        response = loop.run_until_complete(
            client.post("/api/v1/schools/st-marks/concerns", content=body, headers={"content-type": "application/json"})
        )
        statuses.append(response.status_code)
        assert response.status_code in (200, 202, 422), response.text

    async def unsettled() -> int:
        async with transaction(runtime.sessions) as session:
            query = sa.select(sa.func.count()).select_from(raw_inputs).where(raw_inputs.c.status == "received")
            return int((await session.execute(query)).scalar_one())

    try:
        post()
        assert loop.run_until_complete(unsettled()) == 0
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(runtime.stop())
        loop.close()
    assert {202, 422} <= set(statuses)
