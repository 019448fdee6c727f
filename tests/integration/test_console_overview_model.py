"""The overview's read model (real PostgreSQL): the same rows in any batching and on redelivery, so rebuilding
from the stream gives what the live console has; and migration 0005 fills the new tables from the chronology."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from services.console.projection import chronology_entry, on_events
from services.console.store import SCHEMA, case_entries, cases, concerns, deadlines, debrief_actions, policies
from services.routing.domain import deadline_event
from shared.consumer import EventBatches
from shared.contracts.case_events import (
    CaseAcknowledged,
    CaseAcknowledgedPayload,
    CaseDebriefActionCompleted,
    CaseDebriefActionCompletedPayload,
    CaseDebriefRecorded,
    CaseDebriefRecordedPayload,
    DebriefAction,
    DebriefActionDue,
    DebriefActionDuePayload,
)
from shared.contracts.envelope import Event, utc_now
from shared.contracts.events import (
    CaseOpened,
    CaseOpenedPayload,
    DeadlineReached,
    DeadlineReachedPayload,
    PolicyAdopted,
    PolicyAdoptedPayload,
    PolicyReviewDue,
    PolicyReviewDuePayload,
)
from shared.db import make_engine, session_factory
from shared.dead_letters import DeadLetters
from shared.inbox_outbox import InboxOutbox
from shared.migrations import _config, migrate
from shared.settings import Settings
from shared.subjects import CONSOLE_READ_MODEL, Subjects
from shared.unit_of_work import UnitOfWork, Work
from tests.support.console import ROUTING

pytestmark = pytest.mark.integration

DUE_ON = date(2026, 1, 5)


def history() -> list[Event[Any]]:
    """A case debriefed with three actions (one done, one reminded), a LADO deadline that fired, and a policy."""
    at = utc_now()
    common: dict[str, Any] = {"school_id": "st-marks", "aggregate_id": "case-1", "actor": ROUTING, "occurred_at": at}
    opened = CaseOpened.new(
        CaseOpenedPayload(case_id="case-1", reference="REF-1", concern_event_id="c-1", kind="k", policy_version=1),
        **common,
    )

    def deadline(kind: str) -> Any:
        return deadline_event(
            case_id="case-1", kind=kind, due_at=at, description="", rung=0, school_id="st-marks", cause=opened, now=at
        )

    lado = deadline("consider_lado_referral")
    return [
        PolicyAdopted.new(
            PolicyAdoptedPayload(version=1, digest="d", review_due="2022-10-31", document={"source": {}}),
            **{**common, "aggregate_id": "st-marks:v1"},
        ),
        opened,
        lado,
        deadline("acknowledge"),  # routing's own timer: not kept with the policy's deadlines
        DeadlineReached.new(
            DeadlineReachedPayload(
                deadline_id=lado.payload.deadline_id,
                case_id="case-1",
                kind=lado.payload.kind,
                due_at=at,
                outcome="reminded",
            ),
            **{**common, "aggregate_id": lado.payload.deadline_id},
        ),
        CaseAcknowledged.new(
            CaseAcknowledgedPayload(case_id="case-1", acknowledged_by="s-bird", role="designated_safeguarding_lead"),
            **common,
        ),
        CaseDebriefRecorded.new(
            CaseDebriefRecordedPayload(
                case_id="case-1",
                lessons_learnt="Synthetic",
                actions=[
                    DebriefAction(action_id=name, description="Synthetic", owner="s-bird", due_on=DUE_ON)
                    for name in ("one", "two", "three")
                ],
            ),
            **common,
        ),
        CaseDebriefActionCompleted.new(CaseDebriefActionCompletedPayload(case_id="case-1", action_id="two"), **common),
        DebriefActionDue.new(
            DebriefActionDuePayload(
                case_id="case-1",
                reference="REF-1",
                action_id="one",
                owner_id="s-bird",
                reminded=["s-bird"],
                due_on=DUE_ON,
                reminder_number=3,
                repeats_every_hours=24,
            ),
            **{**common, "aggregate_id": "case-1:one"},
        ),
        PolicyReviewDue.new(
            PolicyReviewDuePayload(version=1, review_due="2022-10-31", recipients=[]),
            **{**common, "aggregate_id": "st-marks:v1", "occurred_at": at + timedelta(minutes=1)},
        ),
    ]


async def duties(connection: Any) -> dict[str, list[tuple[Any, ...]]]:
    """What the overview reads of the new tables and columns."""
    review = sa.select(policies.c.school_id, policies.c.version, policies.c.review_due, policies.c.review_reminded_at)
    return {
        "deadlines": [tuple(r) for r in await connection.execute(sa.select(deadlines).order_by("deadline_id"))],
        "actions": [
            tuple(r) for r in await connection.execute(sa.select(debrief_actions).order_by(debrief_actions.c.action_id))
        ],
        "reviews": [tuple(r) for r in await connection.execute(review)],
    }


async def test_the_same_rows_whatever_the_batches_and_when_a_batch_comes_twice(settings: Settings) -> None:
    events = history()
    engine = make_engine(settings.database_url, pool_size=1)
    sessions = session_factory(engine)
    found = []
    try:
        await migrate(engine, service="console", schema=SCHEMA)
        for batches in ([events], [[e] for e in events], [[e] for e in events for _ in range(2)]):
            async with sessions() as session, session.begin():
                for table in (cases, case_entries, concerns, policies, deadlines, debrief_actions):
                    await session.execute(sa.delete(table))
            for batch in batches:
                async with sessions() as session, session.begin():
                    await on_events(batch, work=Work(session=session, tables=InboxOutbox(SCHEMA)))
            async with engine.connect() as connection:
                found.append(await duties(connection))
    finally:
        await engine.dispose()
    assert found[0] == found[1] == found[2]
    assert await claimed_without_a_transaction(settings, events) == found[0]
    assert [(row[1], row[3], row[5]) for row in found[0]["deadlines"]] == [
        ("st-marks", "consider_lado_referral", events[4].occurred_at)
    ]
    assert [(row[1], row[4], row[5]) for row in found[0]["actions"]] == [("one", DUE_ON, 3), ("three", DUE_ON, 0)]
    assert found[0]["reviews"] == [("st-marks", 1, date(2022, 10, 31), events[-1].occurred_at)]


async def claimed_without_a_transaction(settings: Settings, events: list[Event[Any]]) -> dict[str, Any]:
    """The rows when each event comes twice, alone, as the consumer edge runs the projection: no transaction block
    and no inbox claim (the second delivery is written again, to the same rows)."""
    engine = make_engine(settings.database_url, pool_size=1)
    uow = UnitOfWork(session_factory(engine), InboxOutbox(SCHEMA))
    edge = EventBatches(
        name=CONSOLE_READ_MODEL,
        uow=uow,
        dead_letters=DeadLetters(Subjects.from_settings(settings), jetstream=unused_jetstream),
        batch_handler=on_events,
        idempotent=True,
    )
    try:
        async with uow.begin() as work:
            for table in (cases, case_entries, concerns, policies, deadlines, debrief_actions, uow.tables.inbox):
                await work.session.execute(sa.delete(table))
        for event in (e for e in events for _ in range(2)):
            assert await edge.process([event]) == 1
        async with engine.connect() as connection:
            inbox = await connection.execute(sa.select(uow.tables.inbox.c.event_id))
            assert list(inbox) == []  # nothing claimed: the projection is the same however often an event comes
            return await duties(connection)
    finally:
        await engine.dispose()


def unused_jetstream() -> Any:
    raise AssertionError("nothing is dead-lettered here")


async def test_the_migration_fills_the_new_tables_from_the_chronology_already_kept(settings: Settings) -> None:
    kept = [e for e in history() if getattr(e.payload, "case_id", None)]
    at = utc_now()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"create schema if not exists {SCHEMA}"))
            await connection.run_sync(lambda sync: command.upgrade(_config("console", SCHEMA, sync), "0004"))
            await connection.execute(sa.insert(case_entries), [chronology_entry(event, "case-1") for event in kept])
            await connection.execute(
                sa.insert(policies).values(
                    school_id="st-marks",
                    version=1,
                    digest="d",
                    adopted_at=at,
                    adopted_by="routing",
                    document={"source": {"next_review": "2022-10-31"}},
                )
            )
        await migrate(engine, service="console", schema=SCHEMA)
        async with engine.connect() as connection:
            found = await duties(connection)
    finally:
        await engine.dispose()
    assert [(row[3], row[6]) for row in found["deadlines"]] == [("consider_lado_referral", "reminded")]
    assert [(row[1], row[3], row[4], row[5]) for row in found["actions"]] == [
        ("one", "s-bird", DUE_ON, 3),
        ("three", "s-bird", DUE_ON, 0),
    ]
    assert found["reviews"] == [("st-marks", 1, date(2022, 10, 31), None)]
