"""Every open of a case is recorded: the one place that does it, so it can switch to a `record.viewed` event.

Today the read is written to the console's own `read_audit` table in the same transaction as the read (a read
that cannot be recorded is not served). When a `record.viewed` event class exists, this emits it through the
unit of work's outbox instead, and audit chains it with everything else.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.access import Principal
from services.console.store import read_audit


async def record_case_read(
    session: AsyncSession, principal: Principal, *, school_id: str, case_id: str, at: datetime
) -> None:
    """Record that this person opened this case, in the reading transaction."""
    await session.execute(
        sa.insert(read_audit).values(
            school_id=school_id, case_id=case_id, person_id=principal.person_id, role=principal.role, at=at
        )
    )
