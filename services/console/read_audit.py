"""Every open of a case is recorded: a `record.viewed` event, through the console's outbox, before it is shown.

The event commits in its own transaction after the need-to-know checks pass and before the page is rendered, so
nothing is seen unrecorded and a refusal records nothing. The relay publishes it and audit chains it into the
school's ledger with everything else (`safeguard audit who-read --case` lists the views).
"""

from __future__ import annotations

from datetime import datetime

from services.console.access import Principal
from shared.contracts.envelope import Actor
from shared.read_audit import record_viewed
from shared.unit_of_work import UnitOfWork

VIA = "console"
# The console opens a case only for a role whose need to know covers it (services/console/access.py).
REASON = "need to know by role"


async def record_case_read(
    uow: UnitOfWork,
    principal: Principal,
    *,
    school_id: str,
    case_id: str,
    at: datetime,
    reason: str = REASON,
    break_glass: bool = False,
) -> None:
    """Record that this person opened this case (by break-glass, with their stated reason); returns once committed."""
    viewed = record_viewed(
        case_id,
        school_id=school_id,
        viewer=Actor(id=principal.person_id, role=principal.role),
        view="case",
        reason=reason,
        now=at,
        via=VIA,
        break_glass=break_glass,
    )
    async with uow.begin() as work:
        work.emit([viewed])
