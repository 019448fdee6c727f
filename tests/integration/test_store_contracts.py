"""One body of tests per store, run against its in-memory fake and its SQL store on PostgreSQL, so no fake drifts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.domain import verify_chain
from services.audit.kek import LocalKek
from services.audit.keyring import KeyRing
from services.audit.sealing import new_key
from services.audit.store import Ledger, SqlLedger
from services.intake.domain import concern_received as build_concern_received
from services.intake.store import Acceptance, Arrived, IntakeStore, SqlIntakeStore
from services.routing.domain import ROUTING
from services.routing.failure_store import FailedNotification, NotificationFailures, SqlNotificationFailures
from services.routing.store import (
    AdoptedPolicy,
    CaseEvents,
    ConcurrencyConflict,
    Deadlines,
    DueDeadline,
    OpenedCase,
    PolicyVersions,
    SqlCaseEvents,
    SqlDeadlines,
    SqlPolicyVersions,
    case_events,
    deadlines,
)
from shared.contracts.concern import Channel, ConcernReport
from shared.contracts.envelope import Event, parse_event
from shared.contracts.events import ConcernReceived, DeadlineSet, DeadlineSetPayload
from shared.db import ensure_database, make_engine, session_factory
from shared.inbox_outbox import InboxOutbox
from shared.migrations import migrate
from shared.unit_of_work import Work
from tests.conftest import drop_test_resources, make_settings
from tests.support.factories import concern_received, report_json
from tests.support.fakes import (
    FakeCaseEvents,
    FakeDeadlines,
    FakeIntakeStore,
    FakeLedger,
    FakeNotificationFailures,
    FakePolicyVersions,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def sql_sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """One database for the module, every service's schema migrated into it."""
    settings = make_settings(f"contracts_{uuid.uuid4().hex[:6]}")
    await ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    for service in ("intake", "routing", "notifications", "audit"):
        await migrate(engine, service=service, schema=service)
    yield session_factory(engine)
    await engine.dispose()
    await drop_test_resources(settings)


@dataclass
class Backend:
    kind: str
    sessions: async_sessionmaker[AsyncSession] | None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self.sessions is None:
            yield cast(AsyncSession, None)  # the fakes never look at their session
            return
        async with self.sessions() as session, session.begin():
            yield session


@pytest.fixture(params=["fake", "sql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return Backend("fake", None)
    return Backend("sql", request.getfixturevalue("sql_sessions"))


def pick(backend: Backend, fake: Any, sql: Any) -> Any:
    return fake if backend.kind == "fake" else sql


def deadline_event(case_id: str, *, n: int) -> Event[Any]:
    payload = DeadlineSetPayload(
        deadline_id=f"{case_id}-d{n}", case_id=case_id, kind="acknowledge", due_at=NOW, description="synthetic"
    )
    return DeadlineSet.new(payload, school_id="st-marks", aggregate_id=case_id, actor=ROUTING, occurred_at=NOW)


def accepted(raw_input_id: uuid.UUID, *, reference: str) -> ConcernReceived:
    report = ConcernReport.model_validate(report_json())
    return build_concern_received(
        report,
        school_id="st-marks",
        reference=reference,
        channel=Channel.json_api,
        raw_input_id=raw_input_id,
        received_at=NOW,
        traceparent=None,
    )


# --- routing: case events -------------------------------------------------------------------------------------


async def test_case_events_load_in_order_and_a_stale_append_is_a_conflict(backend: Backend) -> None:
    store: CaseEvents = pick(backend, FakeCaseEvents(), SqlCaseEvents())
    case_id = f"case-{uuid.uuid4().hex}"
    first, second, late = (deadline_event(case_id, n=n) for n in (1, 2, 3))
    async with backend.transaction() as session:
        assert await store.load(session, case_id) == []
        assert await store.append(session, case_id=case_id, events=[first, second], expected_version=0) == 2
    # A conflict ends its unit of work (no savepoint): the caller decides again in a fresh one.
    with pytest.raises(ConcurrencyConflict):
        async with backend.transaction() as session:
            await store.append(session, case_id=case_id, events=[late], expected_version=1)
    async with backend.transaction() as session:
        assert await store.append(session, case_id=case_id, events=[], expected_version=2) == 2
        assert [e.event_id for e in await store.load(session, case_id)] == [first.event_id, second.event_id]
        await store.index(
            session,
            case_id=case_id,
            school_id="st-marks",
            reference=f"SG-{case_id}",
            version=2,
            status="open",
            policy_version=1,
            opened_at=NOW,
        )
        await store.advance(session, case_id=case_id, version=3, status="closed")


async def test_the_same_event_cannot_be_appended_to_two_cases(backend: Backend) -> None:
    store: CaseEvents = pick(backend, FakeCaseEvents(), SqlCaseEvents())
    event = deadline_event(f"case-{uuid.uuid4().hex}", n=1)
    async with backend.transaction() as session:
        await store.append(session, case_id=f"a-{event.event_id}", events=[event], expected_version=0)
        with pytest.raises(ConcurrencyConflict):
            await store.append(session, case_id=f"b-{event.event_id}", events=[event], expected_version=0)


async def test_a_batch_of_new_cases_is_opened_and_indexed_at_once_and_an_opened_case_cannot_be_opened_again(
    backend: Backend,
) -> None:
    store: CaseEvents = pick(backend, FakeCaseEvents(), SqlCaseEvents())
    case_ids = [f"case-{uuid.uuid4().hex}" for _ in range(3)]
    opened = [
        OpenedCase(
            case_id=case_id,
            school_id="st-marks",
            reference=f"SG-{case_id}",
            events=[deadline_event(case_id, n=n) for n in range(1, 1 + size)],
            policy_version=1,
            opened_at=NOW,
        )
        for size, case_id in enumerate(case_ids, start=1)
    ]
    async with backend.transaction() as session:
        await store.open_all(session, opened)
        await store.open_all(session, [])
        for case in opened:
            assert [e.event_id for e in await store.load(session, case.case_id)] == [e.event_id for e in case.events]
        # The index knows each case at its version: appending after it works, at a stale one does not.
        assert (
            await store.append(
                session, case_id=case_ids[2], events=[deadline_event(case_ids[2], n=9)], expected_version=3
            )
            == 4
        )
    with pytest.raises(ConcurrencyConflict):
        async with backend.transaction() as session:
            await store.open_all(session, opened[:1])


async def test_opening_cases_with_the_work_puts_its_emitted_events_in_the_outbox_and_sets_deadlines_in_one_go(
    sql_sessions: async_sessionmaker[AsyncSession],
) -> None:
    case_id = f"case-{uuid.uuid4().hex}"
    first, second = deadline_event(case_id, n=1), deadline_event(case_id, n=2)
    unpublished = deadline_event(case_id, n=3)  # a case event the work did not emit: stored, not published
    request = deadline_event(f"{case_id}-other", n=1)  # emitted, not a case event: published only
    opened = OpenedCase(
        case_id=case_id,
        school_id="st-marks",
        reference=f"SG-{case_id}",
        events=[first, second, unpublished],
        policy_version=1,
        opened_at=NOW,
    )
    aside = deadline_event(f"{case_id}-aside", n=1)  # a deadline's cause neither stored as a case event nor published
    due = [
        DueDeadline(f"{case_id}-d{n}", "st-marks", case_id, "acknowledge", NOW, {"rung": n}, cause=cause)
        for n, cause in enumerate([second, aside, None])
    ]
    async with sql_sessions() as session, session.begin():
        work = Work(session, InboxOutbox("routing"))
        work.emit([first, request, second])
        await SqlCaseEvents().open_all(session, [opened], due=due, work=work)
        assert work.emitted == [] and work.woken == []  # enqueued already: the rows go to the relay after commit
        written = [(row.event_id, row.event_type, row.body) for row in work.written]
        assert written == [(str(e.event_id), e.type, e.model_dump_json()) for e in (first, request, second)]
        stored = await SqlCaseEvents().load(session, case_id)
        queued = await session.execute(
            sa.text("select event_id, body from routing.outbox where event_id = any(:ids) order by position"),
            {"ids": [first.event_id, second.event_id, unpublished.event_id, request.event_id]},
        )
        rows = queued.all()
        kept = await session.scalars(
            sa.select(case_events.c.event).where(case_events.c.case_id == case_id).order_by(case_events.c.version)
        )
        kept_text = list(kept)
        pending = await SqlDeadlines().pending(session, case_ids=[case_id], kind="acknowledge")
        details = {
            row.deadline_id: row.detail
            for row in await session.execute(
                sa.select(deadlines.c.deadline_id, deadlines.c.detail).where(deadlines.c.case_id == case_id)
            )
        }
    assert pending[case_id].deadline_id in details
    assert details == {row.deadline_id: row.written_detail() for row in due}  # the cause as its own JSON
    assert parse_event(details[f"{case_id}-d0"]["cause"]) == second
    assert stored == [first, second, unpublished]
    # Each case event kept as the text it was published as (the outbox's body), not re-spelt as JSONB.
    assert kept_text == [event.model_dump_json() for event in (first, second, unpublished)]
    assert kept_text[:2] == [rows[0].body, rows[2].body]
    assert [row.event_id for row in rows] == [first.event_id, request.event_id, second.event_id]
    assert [row.position for row in work.written] == sorted(row.position for row in work.written)
    assert [parse_event(row.body) for row in rows] == [first, request, second]


async def test_an_appended_case_event_is_kept_as_its_json_text(sql_sessions: async_sessionmaker[AsyncSession]) -> None:
    case_id = f"case-{uuid.uuid4().hex}"
    event = deadline_event(case_id, n=1)
    async with sql_sessions() as session, session.begin():
        await SqlCaseEvents().append(session, case_id=case_id, events=[event], expected_version=0)
        kept = await session.scalar(sa.select(case_events.c.event).where(case_events.c.case_id == case_id))
        assert await SqlCaseEvents().load(session, case_id) == [event]
    assert kept == event.model_dump_json()


async def test_failed_notifications_are_recorded_once_and_each_record_answers_with_the_cases_earlier_ones(
    backend: Backend,
) -> None:
    store: NotificationFailures = pick(backend, FakeNotificationFailures(), SqlNotificationFailures())
    cases = [f"case-{uuid.uuid4().hex}" for _ in range(3)]
    failed = [FailedNotification(f"{case}-n", case, "s-bird", "push") for case in cases[:2]]
    later = FailedNotification(f"{cases[0]}-m", cases[0], "s-bird", "email")
    async with backend.transaction() as session:
        assert await store.record(session, failed, at=NOW) == {cases[0]: set(), cases[1]: set()}
        assert await store.record(session, failed[:1], at=NOW) == {cases[0]: {f"{cases[0]}-n"}}  # nothing new
        assert await store.record(session, [], at=NOW) == {}
        assert await store.record(session, [later, failed[1]], at=NOW) == {
            cases[0]: {f"{cases[0]}-n"},
            cases[1]: {f"{cases[1]}-n"},
        }
        assert await store.record(session, [later], at=NOW) == {cases[0]: {f"{cases[0]}-n", f"{cases[0]}-m"}}


# --- routing: deadlines ---------------------------------------------------------------------------------------


async def test_deadlines_set_in_one_batch_are_due_like_any_other_and_an_id_is_set_once(backend: Backend) -> None:
    store: Deadlines = pick(backend, FakeDeadlines(), SqlDeadlines())
    case_id, at = f"case-{uuid.uuid4().hex}", NOW - timedelta(days=3650, hours=2)
    rows = [
        DueDeadline(f"{case_id}-{n}", "st-marks", case_id, "acknowledge", at + timedelta(minutes=n), {"rung": n})
        for n in (2, 1)
    ]
    async with backend.transaction() as session:
        await store.set_all(session, rows)
        await store.set_all(
            session, [DueDeadline(f"{case_id}-1", "st-marks", case_id, "acknowledge", at, {"rung": 99})]
        )
        await store.set_all(session, [])
        due = [d for d in await store.claim_due(session, now=at + timedelta(minutes=5)) if d.case_id == case_id]
        for row in rows:  # fired, so the other tests' claims see only their own rows
            await store.close(session, deadline_id=row.deadline_id, status="fired", at=at)
    assert [(d.deadline_id, d.due_at, d.detail) for d in due] == [
        (f"{case_id}-1", at + timedelta(minutes=1), {"rung": 1}),
        (f"{case_id}-2", at + timedelta(minutes=2), {"rung": 2}),
    ]


async def test_a_deadline_is_claimed_when_due_in_due_order_until_it_is_closed(backend: Backend) -> None:
    store: Deadlines = pick(backend, FakeDeadlines(), SqlDeadlines())
    case_id, at = f"case-{uuid.uuid4().hex}", NOW - timedelta(days=3650)  # far back: only this test's rows are due
    async with backend.transaction() as session:
        for name, offset in (("later", 2), ("sooner", 1), ("future", 9)):
            await store.set(
                session,
                deadline_id=f"{case_id}-{name}",
                school_id="st-marks",
                case_id=case_id,
                kind="acknowledge",
                due_at=at + timedelta(minutes=offset),
                detail={"rung": offset},
            )
        await store.set(  # the same id again changes nothing
            session,
            deadline_id=f"{case_id}-sooner",
            school_id="st-marks",
            case_id=case_id,
            kind="acknowledge",
            due_at=at + timedelta(minutes=8),
            detail={"rung": 99},
        )
        due = await store.claim_due(session, now=at + timedelta(minutes=5))
        assert [(d.deadline_id, d.detail) for d in due] == [
            (f"{case_id}-sooner", {"rung": 1}),
            (f"{case_id}-later", {"rung": 2}),
        ]
        await store.close(session, deadline_id=f"{case_id}-sooner", status="fired", at=at)
        assert [d.deadline_id for d in await store.claim_due(session, now=at + timedelta(minutes=5))] == [
            f"{case_id}-later"
        ]


async def test_each_cases_soonest_pending_deadline_of_a_kind_is_found_and_brought_forward(backend: Backend) -> None:
    store: Deadlines = pick(backend, FakeDeadlines(), SqlDeadlines())
    cases, at = [f"case-{uuid.uuid4().hex}" for _ in range(3)], NOW + timedelta(days=3650)  # never due in a test
    rows = [
        DueDeadline(f"{cases[0]}-later", "st-marks", cases[0], "acknowledge", at + timedelta(hours=2), {}),
        DueDeadline(f"{cases[0]}-sooner", "st-marks", cases[0], "acknowledge", at + timedelta(hours=1), {}),
        DueDeadline(f"{cases[1]}-other", "st-marks", cases[1], "lado_consideration", at, {}),
    ]
    async with backend.transaction() as session:
        await store.set_all(session, rows)
        found = await store.pending(session, case_ids=cases, kind="acknowledge")
        assert {case: d.deadline_id for case, d in found.items()} == {cases[0]: f"{cases[0]}-sooner"}
        assert await store.pending(session, case_ids=[], kind="acknowledge") == {}
        await store.bring_forward(session, deadline_ids=[f"{cases[0]}-later", f"{cases[1]}-other"], to=at)
        await store.bring_forward(session, deadline_ids=[f"{cases[0]}-sooner"], to=at + timedelta(days=1))  # later
        found = await store.pending(session, case_ids=cases[:1], kind="acknowledge")
        assert (found[cases[0]].deadline_id, found[cases[0]].due_at) == (f"{cases[0]}-later", at)
        assert (await store.pending(session, case_ids=cases[1:2], kind="lado_consideration"))[cases[1]].due_at == at


async def test_cancelling_a_cases_deadlines_stops_only_its_pending_ones_of_those_kinds(backend: Backend) -> None:
    store: Deadlines = pick(backend, FakeDeadlines(), SqlDeadlines())
    case_id, at = f"case-{uuid.uuid4().hex}", NOW - timedelta(days=3650, hours=1)
    async with backend.transaction() as session:
        for kind in ("acknowledge", "lado_consideration"):
            await store.set(
                session,
                deadline_id=f"{case_id}-{kind}",
                school_id="st-marks",
                case_id=case_id,
                kind=kind,
                due_at=at,
                detail={},
            )
        assert await store.cancel_for_case(session, case_id=case_id, kinds=["acknowledge"], at=at) == 1
        assert await store.cancel_for_case(session, case_id=case_id, kinds=["acknowledge"], at=at) == 0
        left = [d.kind for d in await store.claim_due(session, now=at) if d.case_id == case_id]
        assert left == ["lado_consideration"]


# --- routing: policy versions ---------------------------------------------------------------------------------


async def test_policy_versions_are_found_by_number_and_the_latest_is_the_highest(backend: Backend) -> None:
    store: PolicyVersions = pick(backend, FakePolicyVersions(), SqlPolicyVersions())
    school = f"school-{uuid.uuid4().hex[:8]}"
    async with backend.transaction() as session:
        assert await store.latest(session, school_id=school) is None
        for version in (1, 2):
            policy = AdoptedPolicy(school, version, f"sha256:{version}", {"version": version})
            await store.record(session, policy, adopted_at=NOW)
        assert await store.latest(session, school_id=school) == AdoptedPolicy(school, 2, "sha256:2", {"version": 2})
        assert await store.get(session, school_id=school, version=1) == AdoptedPolicy(
            school, 1, "sha256:1", {"version": 1}
        )
        assert await store.get(session, school_id=school, version=3) is None


# --- notifications: deliveries --------------------------------------------------------------------------------


async def test_the_ledger_extends_each_schools_chain_and_the_chain_verifies(backend: Backend) -> None:
    store: Ledger = pick(backend, FakeLedger(), SqlLedger(sealer=KeyRing(LocalKek(new_key()))))
    schools = [f"school-{uuid.uuid4().hex[:8]}", f"school-{uuid.uuid4().hex[:8]}"]
    first = [concern_received(school_id=schools[0]), concern_received(school_id=schools[1])]
    then = [concern_received(school_id=schools[0]), concern_received(school_id=schools[0])]
    async with backend.transaction() as session:
        assert await store.append(session, first) == {schools[0]: 1, schools[1]: 1}
        assert await store.append(session, then) == {schools[0]: 3}
        chain = await store.chain(session, school_id=schools[0])
        # the ledger is audit's inbox: an event it holds (a redelivery) is skipped, the rest appended after it
        more = concern_received(school_id=schools[0])
        assert await store.append(session, [then[1], more, first[1]]) == {schools[0]: 4, schools[1]: 1}
        longer = await store.chain(session, school_id=schools[0])
    assert [entry.event["event_id"] for entry in chain] == [str(e.event_id) for e in (first[0], *then)]
    assert verify_chain(chain) == []
    assert [entry.event["event_id"] for entry in longer] == [str(e.event_id) for e in (first[0], *then, more)]
    assert verify_chain(longer) == []


async def test_an_event_id_chained_under_another_school_is_refused_not_skipped(backend: Backend) -> None:
    store: Ledger = pick(backend, FakeLedger(), SqlLedger(sealer=KeyRing(LocalKek(new_key()))))
    schools = [f"school-{uuid.uuid4().hex[:8]}", f"school-{uuid.uuid4().hex[:8]}"]
    chained = concern_received(school_id=schools[0])
    impostor = concern_received(school_id=schools[1]).model_copy(update={"event_id": chained.event_id})
    async with backend.transaction() as session:
        await store.append(session, [chained])
    # Not a redelivery: the batch fails, so the consumer edge dead-letters the event with the reason.
    with pytest.raises(Exception, match=r"(?i)unique|another school"):
        async with backend.transaction() as session:
            await store.append(session, [impostor])
    async with backend.transaction() as session:
        assert await store.chain(session, school_id=schools[1]) == []


# --- intake ---------------------------------------------------------------------------------------------------


async def test_raw_input_is_kept_once_per_idempotency_key_and_accepted_under_a_free_reference(
    backend: Backend,
) -> None:
    store: IntakeStore = pick(backend, FakeIntakeStore(), SqlIntakeStore())
    key, school = f"key-{uuid.uuid4().hex}", "st-marks"
    raw: dict[str, Any] = {
        "school_id": school,
        "channel": "json_api",
        "content_type": "application/json",
        "body": b"{}",
        "received_at": NOW,
    }
    async with backend.transaction() as session:
        kept = await store.keep_raw(session, idempotency_key=key, **raw)
        assert kept.status == "received"
        assert (await store.keep_raw(session, idempotency_key=key, **raw)).raw_input_id == kept.raw_input_id
        unkeyed = [await store.keep_raw(session, idempotency_key=None, **raw) for _ in range(2)]
        assert unkeyed[0].raw_input_id != unkeyed[1].raw_input_id
        event = accepted(kept.raw_input_id, reference=f"SG-TEST-{uuid.uuid4().hex[:8]}")
        assert await store.accept(session, event) is True
        assert await store.reference_of(session, raw_input_id=kept.raw_input_id) == event.payload.reference
        again = await store.keep_raw(session, idempotency_key=key, **raw)
        assert (again.status, again.reference) == ("accepted", event.payload.reference)
        assert (
            await store.accept(session, accepted(unkeyed[0].raw_input_id, reference=event.payload.reference)) is False
        )
        await store.reject(session, raw_input_id=unkeyed[1].raw_input_id, reason="not JSON")
        assert await store.reference_of(session, raw_input_id=unkeyed[1].raw_input_id) is None


async def test_a_group_of_inputs_is_kept_and_accepted_at_once_and_repeats_within_it_count_once(
    backend: Backend,
) -> None:
    store: IntakeStore = pick(backend, FakeIntakeStore(), SqlIntakeStore())
    key = f"key-{uuid.uuid4().hex}"
    arrived = [
        Arrived("st-marks", "json_api", "application/json", b"{}", NOW, key),
        Arrived("st-marks", "json_api", "application/json", b"{}", NOW, None),
        Arrived("st-marks", "json_api", "application/json", b"{}", NOW, key),  # the same key again in the group
    ]
    async with backend.transaction() as session:
        kept = await store.keep_raw_all(session, arrived)
    assert kept[0].raw_input_id == kept[2].raw_input_id != kept[1].raw_input_id
    assert all(raw.status == "received" for raw in kept)
    taken = f"SG-TEST-{uuid.uuid4().hex[:8]}"
    group = [
        Acceptance(accepted(kept[0].raw_input_id, reference=taken), receipt_sha256="0" * 64),
        Acceptance(accepted(kept[1].raw_input_id, reference=taken)),  # the same reference: not accepted
    ]
    async with backend.transaction() as session:
        assert await store.accept_all(session, group) == [True, False]
        assert await store.reference_of(session, raw_input_id=kept[0].raw_input_id) == taken
        assert await store.reference_of(session, raw_input_id=kept[1].raw_input_id) is None
