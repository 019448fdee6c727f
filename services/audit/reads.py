"""Who read what: recording a view through audit's own outbox, and listing the views of a case from the ledger."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import event_of
from services.audit.keyring import KeyRing, SchoolKeys
from services.audit.store import SCHEMA, ledger
from shared.contracts.record_events import RecordViewed
from shared.inbox_outbox import InboxOutbox


async def note_view(session: AsyncSession, viewed: RecordViewed) -> None:
    """Put the view in audit's outbox (the caller commits before showing anything); the relay publishes it."""
    await InboxOutbox(SCHEMA).enqueue(session, [viewed])


async def who_read(
    session: AsyncSession, *, keyring: KeyRing, case_id: str, school_id: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded view of the case, oldest first: who, in what role, when, how, why (opened: the reason is
    sealed under the case's key, so it reads as erased once that is shredded), and whether break-glass."""
    query = views_of(case_id, school_id=school_id)
    rows = await session.execute(query)
    keys: dict[str, SchoolKeys] = {}
    views = []
    for row in rows:
        if row.school_id not in keys:
            keys[row.school_id] = await keyring.reader(session, school_id=row.school_id)
        views.append(_view(keys[row.school_id].open(event_of(row.entry)).document))
    return views


def views_of(case_id: str, *, school_id: str | None = None) -> sa.Select[tuple[str, int, bytes]]:
    """The case's record.viewed entries in order. The type is written inline, not as a parameter, so the planner
    can prove the partial index of record.viewed entries (`ledger_views`) applies, in a generic plan too."""
    viewed = sa.literal(RecordViewed.TYPE, literal_execute=True)
    query = sa.select(ledger.c.school_id, ledger.c.school_sequence, ledger.c.entry).where(
        ledger.c.event_type == viewed, ledger.c.aggregate_id == case_id
    )
    if school_id is not None:
        query = query.where(ledger.c.school_id == school_id)
    return query.order_by(ledger.c.school_id, ledger.c.school_sequence)


def _view(document: dict[str, Any]) -> dict[str, Any]:
    payload = document["payload"]
    return {
        "viewer": document["actor"]["id"],
        "role": document["actor"]["role"],
        "viewed_at": document["occurred_at"],
        "view": payload["view"],
        "via": payload["via"],
        "reason": payload["reason"],
        "break_glass": payload["break_glass"],
    }
