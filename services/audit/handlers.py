"""Audit's handler: every event goes onto its school's chain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from services.audit.store import Ledger
from shared.contracts.envelope import Event
from shared.unit_of_work import Work


async def on_events(
    events: Sequence[Event[Any]], *, work: Work, ledger: Ledger, stream_sequences: Mapping[uuid.UUID, int]
) -> None:
    """Append a pulled batch of events, in stream order, to the confidential record; audit publishes nothing.

    The ledger is audit's inbox: its read under the school's lock finds the events it holds already (its
    `event_id` is unique) and they are not appended again, so the batch's claim is taken here and no inbox row
    is written."""
    work.take_claim()
    await ledger.append(work.session, events, stream_sequences=stream_sequences)
