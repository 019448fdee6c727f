"""Reporting a concern the way a reporter's app does when the server is briefly away: retry, same key."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.waiting import eventually


async def post_until_accepted(
    client: httpx.AsyncClient, url: str, *, report: dict[str, Any], idempotency_key: str, timeout: float = 60.0
) -> httpx.Response:
    """POST `report` with its Idempotency-Key until intake answers 2xx (connection refused counts as try again)."""

    async def attempt() -> httpx.Response | None:
        try:
            return await client.post(url, json=report, headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError:
            return None

    answer = await eventually(
        attempt, until=lambda got: got is not None and got.is_success, timeout=timeout, what="the report accepted"
    )
    assert answer is not None
    return answer
