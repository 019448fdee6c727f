"""What sealing personal fields costs audit's append path: events/s appended with and without it, same run.

Run from the repository root:  .venv/bin/python bench/bench_audit_append.py [--events 20000]
Needs the PostgreSQL of `safeguard up` or the tests (SAFEGUARD_DATABASE_URL; a scratch database is made and
dropped). Synthetic concerns as they flow through the services: per concern a concern.received (a reporter, a
named child, narrative), case.opened, case.triaged naming two staff, two notification.requested and two
notification.sent, a person linked and a decision: 9 events, 6 with personal fields, a new case key per concern.
Batches of 256 in one transaction each, as audit's consumer appends them; the two modes alternate in rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from services.audit.kek import LocalKek  # noqa: E402
from services.audit.keyring import KeyRing  # noqa: E402
from services.audit.sealing import new_key  # noqa: E402
from services.audit.store import SCHEMA, SealingPlan, SqlLedger  # noqa: E402
from services.routing.case import fold  # noqa: E402
from services.routing.domain import case_id_for  # noqa: E402
from shared.contracts.envelope import Event  # noqa: E402
from shared.contracts.events import NotificationSent, NotificationSentPayload, PersonRef  # noqa: E402
from shared.db import asyncpg_dsn, ensure_database, make_engine, session_factory, transaction  # noqa: E402
from shared.migrations import migrate  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from tests.support.factories import concern_received, notification_requested  # noqa: E402
from tests.unit.routing_case.cases import opening_events, run  # noqa: E402

BATCH = 256
STAFF = [
    PersonRef(person_id=f"staff-{n}", name=f"Staff Member {n}", role="designated_safeguarding_lead") for n in (1, 2)
]


class NoSealing:
    """The append path as it was: documents chained as they come."""

    def plan(self, *, school_id: str, documents: list[dict[str, Any]]) -> SealingPlan:
        return SealingPlan(school_id, documents, [], [])

    async def seal(self, session: AsyncSession, plan: SealingPlan, *, keys: Any) -> None:
        return None


def one_concern(school_id: str, number: int) -> list[Event[Any]]:
    concern = concern_received(
        school_id=school_id,
        reporter={"role": "parent_carer", "name": f"Parent {number}", "contact": f"parent{number}@example.org"},
        people=[{"role": "learner", "involvement": "victim", "name": f"Learner {number}", "age": 12}],
    )
    case_id = case_id_for(concern)
    opening = opening_events(case_id=case_id, school_id=school_id)
    opening[1] = opening[1].model_copy(update={"payload": opening[1].payload.model_copy(update={"recipients": STAFF})})
    state = fold(opening)
    person = {"person_id": f"learner-{number}", "role": "learner", "involvement": "victim", "name": f"Learner {number}"}
    linked = run(state, "link_person", person=person)
    decided = run(fold(linked, state=state), "record_decision", minutes=2, kind="not_refer", decision="Support",
                  reasons="Spoke with the learner and their parent")  # fmt: skip
    notified: list[Event[Any]] = []
    for staff in STAFF:
        requested = notification_requested(channel="email", address=f"{staff.person_id}@example.org", recipient=staff,
                                           cause=concern)  # fmt: skip
        sent = NotificationSent.new(
            NotificationSentPayload(notification_id=requested.payload.notification_id, case_id=case_id,
                                    channel="email", recipient_person_id=staff.person_id),
            school_id=school_id, aggregate_id=requested.aggregate_id, actor=requested.actor,
            occurred_at=requested.occurred_at, cause=requested,
        )  # fmt: skip
        notified += [requested, sent]
    return [concern, *opening, *notified, *linked, *decided]


def workload(events: int, school_id: str) -> list[list[Event[Any]]]:
    made: list[Event[Any]] = []
    number = 0
    while len(made) < events:
        number += 1
        made += one_concern(school_id, number)
    made = made[:events]
    return [made[i : i + BATCH] for i in range(0, len(made), BATCH)]


async def timed_append(sessions: Any, ledger: SqlLedger, batches: list[list[Event[Any]]]) -> tuple[float, float]:
    """(events/s by the wall clock, audit's own CPU microseconds per event: PostgreSQL's work not included)."""
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        async with transaction(sessions) as session:
            await ledger.append(session, batch)
    events = sum(len(batch) for batch in batches)
    return events / (time.perf_counter() - started), (time.process_time() - cpu) / events * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per mode per round")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    url = get_settings().database_url.rsplit("/", 1)[0] + f"/bench_append_{uuid.uuid4().hex[:8]}"
    await ensure_database(url)
    engine = make_engine(url, pool_size=2)
    try:
        await migrate(engine, service="audit", schema=SCHEMA)
        sessions = session_factory(engine)
        plain, sealed = SqlLedger(sealer=NoSealing()), SqlLedger(sealer=KeyRing(LocalKek(new_key())))
        rates: dict[str, list[float]] = {"plain": [], "sealed": []}
        cpu: dict[str, list[float]] = {"plain": [], "sealed": []}
        for round_number in range(options.rounds):
            for mode, ledger in (("plain", plain), ("sealed", sealed)):
                batches = workload(options.events, f"{mode}-{round_number}")  # made outside the timed part
                rate, micros = await timed_append(sessions, ledger, batches)
                rates[mode].append(rate)
                cpu[mode].append(micros)
        for mode, measured in rates.items():
            each = ", ".join(f"{rate:.0f}" for rate in measured)
            print(
                f"{mode:>6}: {statistics.median(measured):6.0f} events/s (rounds: {each}); "
                f"audit CPU {statistics.median(cpu[mode]):4.0f} us/event"
            )
        cost = 1 - statistics.median(rates["sealed"]) / statistics.median(rates["plain"])
        extra = statistics.median(cpu["sealed"]) - statistics.median(cpu["plain"])
        print(f"sealing: {cost:.0%} fewer events/s, +{extra:.0f} us of audit CPU per event")
        print(f"({options.events} events a mode a round, {options.rounds} rounds, batches of {BATCH}; wall-clock rates")
        print("vary with the machine's load, audit's CPU per event much less)")
    finally:
        await engine.dispose()
        admin = await asyncpg.connect(asyncpg_dsn(url.rsplit("/", 1)[0] + "/postgres"))
        try:
            await admin.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')
        finally:
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
