"""Audit's handlers: every event goes onto its school's chain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.store import SqlLedger
from shared.contracts.envelope import Event


async def on_any_event(event: Event[Any], *, session: AsyncSession, ledger: SqlLedger) -> list[Event[Any]]:
    """Append the event to the confidential record; audit publishes nothing in reply."""
    await ledger.append(session, event)
    return []
