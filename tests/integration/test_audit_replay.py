"""Replay: a case rebuilt from the ledger as it stood at any moment, through the case aggregate's own `apply`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit.replay import rebuild_case_index, replay_case, replay_cases, state_json
from services.routing.case import fold
from shared.contracts.envelope import Event
from shared.contracts.events import PersonRef
from shared.db import transaction
from shared.settings import Settings
from tests.support.audit_keys import audit_keyring, sealing_ledger
from tests.support.audit_ledger import migrated_audit
from tests.support.factories import notification_requested
from tests.unit.routing_case.cases import MONDAY, opening_events, run

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with migrated_audit(settings) as sessions:
        yield sessions


async def appended(sessions: async_sessionmaker[AsyncSession], events: list[Event[Any]]) -> None:
    async with transaction(sessions) as session:
        await sealing_ledger().append(session, events)


def a_worked_case() -> list[Event[Any]]:
    """Opened and triaged at 09:00, acknowledged at 09:01, a witness linked at 09:02 (then one more for another)."""
    opening = opening_events()
    state = fold(opening)
    acknowledged = run(state, "acknowledge", minutes=1)
    state = fold(acknowledged, state=state)
    linked = run(
        state, "link_person", minutes=2, person={"person_id": "learner-7", "role": "learner", "involvement": "witness"}
    )
    return [*opening, *acknowledged, *linked]


async def test_as_of_a_moment_between_two_events_gives_the_earlier_state(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = a_worked_case()
    case_id = events[0].aggregate_id
    await appended(sessions, events)
    async with transaction(sessions) as session:
        before_ack = await replay_cases(
            session, keyring=audit_keyring(), school_id="st-marks", as_of=MONDAY + timedelta(seconds=30)
        )
        after_ack = await replay_cases(
            session, keyring=audit_keyring(), school_id="st-marks", as_of=MONDAY + timedelta(seconds=90)
        )
        now = await replay_cases(session, keyring=audit_keyring(), school_id="st-marks")
    assert before_ack[case_id] == fold(events[:2])
    assert (before_ack[case_id].status, before_ack[case_id].acknowledged_by) == ("open", None)
    assert after_ack[case_id] == fold(events[:3])
    assert after_ack[case_id].status == "in_progress" and after_ack[case_id].people == ()
    assert now[case_id] == fold(events)
    assert [p.person_id for p in now[case_id].people] == ["learner-7"]


async def test_nothing_is_replayed_before_the_case_opened(sessions: async_sessionmaker[AsyncSession]) -> None:
    events = a_worked_case()
    await appended(sessions, events)
    async with transaction(sessions) as session:
        assert (
            await replay_cases(
                session, keyring=audit_keyring(), school_id="st-marks", as_of=MONDAY - timedelta(seconds=1)
            )
            == {}
        )
        early = MONDAY - timedelta(seconds=1)
        assert (
            await replay_case(
                session, keyring=audit_keyring(), school_id="st-marks", case_id=events[0].aggregate_id, as_of=early
            )
            is None
        )


async def test_one_case_comes_with_its_chronology_and_other_cases_stay_out(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ours, theirs = a_worked_case(), a_worked_case()
    case_id = ours[0].aggregate_id
    told = notification_requested(
        channel="email",
        address="dsl@example.org",
        recipient=PersonRef(person_id="s-bird", name="S Bird", role="designated_safeguarding_lead"),
        cause=ours[0],
    ).model_copy(update={"occurred_at": MONDAY + timedelta(seconds=5)})
    await appended(sessions, [ours[0], theirs[0], ours[1], told, *theirs[1:], *ours[2:]])
    async with transaction(sessions) as session:
        replayed = await replay_case(session, keyring=audit_keyring(), school_id="st-marks", case_id=case_id)
    assert replayed is not None
    assert replayed["case"] == state_json(fold(ours))
    steps = replayed["chronology"]
    assert [s["type"] for s in steps] == [
        "case.opened",
        "case.triaged",
        "notification.requested",
        "case.acknowledged",
        "case.person_linked",
    ]
    assert [s["event_id"] for s in steps if s["type"].startswith("case.")] == [str(e.event_id) for e in ours]
    assert steps[3]["actor"] == "s-bird" and steps[3]["role"] == "designated_safeguarding_lead"
    assert steps == sorted(steps, key=lambda s: s["school_sequence"])


async def test_the_rebuilt_case_index_says_what_routing_would_hold(sessions: async_sessionmaker[AsyncSession]) -> None:
    events = a_worked_case()
    await appended(sessions, events)
    async with transaction(sessions) as session:
        rows = await rebuild_case_index(session, keyring=audit_keyring(), school_id="st-marks")
    live = fold(events)
    assert rows == [
        {
            "case_id": live.case_id,
            "school_id": "st-marks",
            "reference": live.reference,
            "version": 4,
            "status": "in_progress",
            "policy_version": 1,
            "opened_at": MONDAY,
        }
    ]
