"""Audit's handler: every event goes onto its school's chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.audit.store import SqlLedger
from shared.contracts.envelope import Event
from shared.unit_of_work import Work


async def on_events(events: Sequence[Event[Any]], *, work: Work, ledger: SqlLedger) -> None:
    """Append a pulled batch of events, in stream order, to the confidential record; audit publishes nothing."""
    await ledger.append(work.session, events)
