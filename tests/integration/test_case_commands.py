"""Case commands against real NATS + PostgreSQL: request/reply, events through the outbox, no lost update."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.routing.case import CaseState, fold
from services.routing.commands import execute, register_commands
from services.routing.domain import ACKNOWLEDGE
from services.routing.store import SqlCaseEvents, SqlDeadlines, case_events, cases, deadlines
from shared.contracts import parse_event
from shared.contracts.envelope import Actor, utc_now
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.subjects import Subjects
from tests.support.running import jetstream, running
from tests.support.waiting import eventually
from tests.unit.routing_case.cases import DEPUTY, DSL, HEAD, command, opening_events

pytestmark = pytest.mark.integration

STORE = SqlCaseEvents()


def routing(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, service="routing", schema="routing")
    register_commands(runtime, clock=utc_now)
    return runtime


async def seed(runtime: ServiceRuntime, case_type: str = "concern", **options: Any) -> CaseState:
    """A case opened and triaged the way routing records one, with its index row."""
    events = opening_events(case_type, at=utc_now(), **options)
    state = fold(events)
    async with transaction(runtime.sessions) as session:
        version = await STORE.append(session, case_id=state.case_id, events=events, expected_version=0)
        await STORE.index(
            session,
            case_id=state.case_id,
            school_id=state.school_id,
            reference=state.reference,
            version=version,
            status="open",
            policy_version=state.policy_version,
            opened_at=utc_now(),
        )
    return state


async def ask(client: Any, settings: Settings, body: bytes | dict[str, Any]) -> dict[str, Any]:
    """Send a command the way the console does: a plain NATS request to routing's command subject."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await client.request(Subjects.from_settings(settings).command("routing", "case"), data, timeout=10)
    return json.loads(reply.data)


async def published(js: Any, settings: Settings, *, case_id: str) -> list[str]:
    """Types of the case events on the stream for one case, in order."""
    subject = f"{settings.subject_root}.st-marks.case.>"
    subscription = await js.pull_subscribe(subject, stream=settings.stream_name)
    try:
        messages = await subscription.fetch(200, timeout=0.5)
    except Exception:
        return []
    finally:
        await subscription.unsubscribe()
    events = [parse_event(m.data) for m in messages]
    return [e.type for e in events if e.aggregate_id == case_id]


async def stored(runtime: ServiceRuntime, case_id: str) -> tuple[list[str], Any]:
    """The case's stored event types and its index row."""
    async with transaction(runtime.sessions) as session:
        types = (
            await session.execute(
                sa.select(case_events.c.event_type).where(case_events.c.case_id == case_id).order_by("version")
            )
        ).scalars()
        index = (await session.execute(sa.select(cases).where(cases.c.case_id == case_id))).one()
        return list(types), index


def fields(name: str, state: CaseState, *, by: Actor = DSL, **more: Any) -> dict[str, Any]:
    return command(name, state, by=by, **more)


OUTCOME: dict[str, Any] = {"outcome": "resolved_in_school", "summary": "Support in place"}
NOT_REFERRED: dict[str, Any] = {"kind": "not_refer", "decision": "No referral", "reasons": "Threshold not met"}


async def test_a_case_is_worked_to_closure_over_request_reply(settings: Settings) -> None:
    runtime = routing(settings)
    async with running(runtime), jetstream(settings) as (client, js):
        case = await seed(runtime)
        first = await ask(client, settings, fields("acknowledge", case))
        again = await ask(client, settings, fields("acknowledge", case, by=DEPUTY))
        early = await ask(client, settings, fields("close", case, summary="Done"))
        decided = await ask(client, settings, fields("record_decision", case, **NOT_REFERRED))
        outcome = await ask(client, settings, fields("record_outcome", case, **OUTCOME))
        closed = await ask(client, settings, fields("close", case, by=HEAD, summary="Done"))
        expected = [
            "case.opened",
            "case.triaged",
            "case.acknowledged",
            "case.decision_recorded",
            "case.outcome_recorded",
            "case.closed",
        ]
        on_stream = await eventually(
            lambda: published(js, settings, case_id=case.case_id),
            until=lambda types: types == expected[2:],
            what="the case's new events on the stream",
        )
        types, index = await stored(runtime, case.case_id)
    assert first == {
        "ok": True,
        "case_id": case.case_id,
        "version": 3,
        "status": "in_progress",
        "events": ["case.acknowledged"],
    }
    assert again == {**first, "events": []}
    assert early["ok"] is False and early["code"] == "refused" and "record an outcome" in early["error"]
    assert decided["version"] == 4 and outcome["version"] == 5
    assert closed == {**first, "version": 6, "status": "closed", "events": ["case.closed"]}
    assert on_stream == expected[2:] and types == expected
    assert (index.version, index.status) == (6, "closed")


async def test_a_bad_command_is_refused_naming_the_field(settings: Settings) -> None:
    runtime = routing(settings)
    async with running(runtime), jetstream(settings) as (client, _):
        case = await seed(runtime, parents="inform")
        not_json = await ask(client, settings, b"close the case please")
        no_reason = await ask(client, settings, fields("decide_parent_notification", case, decision="withhold"))
        unknown = await ask(client, settings, {**fields("acknowledge", case), "case_id": "no-such-case"})
        teacher = await ask(client, settings, fields("close", case, by=Actor(id="t-1", role="staff"), summary="x"))
    assert not_json == {"ok": False, "code": "invalid", "error": "the command is not JSON"}
    assert no_reason["code"] == "invalid" and "reason: Field required" in no_reason["error"]
    assert unknown["code"] == "refused" and "no case no-such-case" in unknown["error"]
    assert teacher["code"] == "refused" and "only" in teacher["error"]


async def test_acknowledging_the_case_stops_escalation(settings: Settings) -> None:
    runtime = routing(settings)
    async with running(runtime, subscribers=False):
        case = await seed(runtime)
        async with transaction(runtime.sessions) as session:
            await SqlDeadlines().set(
                session,
                deadline_id=f"{case.case_id}-ack",
                school_id="st-marks",
                case_id=case.case_id,
                kind=ACKNOWLEDGE,
                due_at=utc_now() + timedelta(hours=1),
                detail={},
            )
        reply = await execute(
            fields("acknowledge", case),
            uow=runtime.uow,
            case_events=STORE,
            deadlines=SqlDeadlines(),
            clock=utc_now,
        )
        async with transaction(runtime.sessions) as session:
            status = (
                await session.execute(sa.select(deadlines.c.status).where(deadlines.c.case_id == case.case_id))
            ).scalar_one()
    assert reply["events"] == ["case.acknowledged"] and status == "cancelled"


class SameMomentCaseEvents(SqlCaseEvents):
    """The real store, except that the first `racers` loads wait for each other: all read the same version."""

    def __init__(self, racers: int) -> None:
        self._barrier = asyncio.Barrier(racers)
        self._waiting = racers

    async def load(self, session: Any, case_id: str) -> list[Any]:
        history = await super().load(session, case_id)
        if self._waiting > 0:
            self._waiting -= 1
            await self._barrier.wait()
        return history


async def _race(runtime: ServiceRuntime, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Carry out the commands at the same moment, each in its own transaction, from the same version."""
    store = SameMomentCaseEvents(len(documents))
    return list(
        await asyncio.gather(
            *(execute(document, uow=runtime.uow, case_events=store, clock=utc_now) for document in documents)
        )
    )


async def _ready_to_close(runtime: ServiceRuntime) -> CaseState:
    case = await seed(runtime)
    for name, more in (("record_decision", NOT_REFERRED), ("record_outcome", OUTCOME)):
        reply = await execute(
            fields(name, case, **more),
            uow=runtime.uow,
            case_events=STORE,
            clock=utc_now,
        )
        assert reply["ok"], reply
    return case


async def test_two_closes_racing_close_the_case_once(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="services.routing.commands")
    runtime = routing(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
        case = await _ready_to_close(runtime)
        replies = await _race(
            runtime, [fields("close", case, summary="By the DSL"), fields("close", case, by=HEAD, summary="By head")]
        )
        on_stream = await eventually(
            lambda: published(js, settings, case_id=case.case_id),
            until=lambda types: "case.closed" in types,
            what="case.closed on the stream",
        )
        types, index = await stored(runtime, case.case_id)
    won = [r for r in replies if r["ok"]]
    lost = [r for r in replies if not r["ok"]]
    assert len(won) == 1 and won[0]["version"] == 5
    assert len(lost) == 1 and lost[0]["code"] == "refused" and "closed" in lost[0]["error"]
    assert types.count("case.closed") == 1 and on_stream.count("case.closed") == 1
    assert "deciding again" in caplog.text
    assert (index.version, index.status) == (5, "closed")


async def test_commands_on_the_version_they_saw_never_overwrite_each_other(settings: Settings) -> None:
    runtime = routing(settings)
    async with running(runtime, subscribers=False):
        case = await _ready_to_close(runtime)
        replies = await _race(
            runtime,
            [
                fields("close", case, summary="Closing", expected_version=4),
                fields("reclassify", case, case_type="staff_allegation", reason="Teacher named", expected_version=4),
            ],
        )
        types, _ = await stored(runtime, case.case_id)
    assert sorted(r["ok"] for r in replies) == [False, True]
    [lost] = [r for r in replies if not r["ok"]]
    assert lost["code"] == "conflict" and "moved on" in lost["error"]
    assert len(types) == 5


async def test_concurrent_actions_are_all_recorded_in_turn(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.routing.commands")
    runtime = routing(settings)
    async with running(runtime, subscribers=False):
        case = await seed(runtime)
        actions = ["spoke_to_learner", "pastoral_support", "parents_contacted", "early_help", "other"]
        replies = await _race(runtime, [fields("record_action", case, action=a) for a in actions])
        types, index = await stored(runtime, case.case_id)
    assert all(r["ok"] for r in replies), replies
    assert sorted(r["version"] for r in replies) == [3, 4, 5, 6, 7]
    assert types[2:] == ["case.action_recorded"] * 5 and index.version == 7
    assert caplog.text.count("deciding again") >= 4
