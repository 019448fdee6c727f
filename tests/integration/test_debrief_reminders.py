"""Debrief actions reminded until done, against real NATS + PostgreSQL with routing's clock in the test's hands.

Due -> the owner's reminder is requested; not done -> repeated at the interval; routing restarted (and scaled out)
in between -> exactly one reminder per due time; done -> no more reminders; the listing shows what is open.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from services.routing.app import RoutingService
from services.routing.debrief_reminders import DEBRIEF_ACTION
from services.routing.store import deadlines
from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.contracts.case_events import DEBRIEF_ACTION_DUE
from shared.db import transaction
from shared.settings import Settings
from shared.subjects import Subjects
from tests.integration.test_timers import Clock, a_concern_for_the_dsl_alone, start, stop
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EVERY_HOURS = 24.0


async def ask(settings: Settings, clock: Clock, command: str, *, person: str = "s-bird", **fields: Any) -> Any:
    """A case command signed as the operator CLI signs it, sent over NATS request/reply."""
    key = load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")
    assertion = issue(key, issuer="operator", person_id=person, school_id="st-marks", now=clock.now)
    document = {"command": command, "school_id": "st-marks", "assertion": assertion, **fields}
    client = await nats.connect(settings.nats_url)
    try:
        subject = Subjects.from_settings(settings).command("routing", "case")
        reply = await client.request(subject, json.dumps(document).encode(), timeout=15)
    finally:
        await client.close()
    answer = json.loads(reply.data)
    assert answer["ok"], answer
    return answer


async def timers(service: RoutingService, case_id: str) -> list[Any]:
    async with transaction(service.runtime.sessions) as session:
        rows = await session.execute(
            sa.select(deadlines)
            .where(deadlines.c.case_id == case_id, deadlines.c.kind == DEBRIEF_ACTION)
            .order_by(deadlines.c.due_at)
        )
        return list(rows)


async def reminders(js: Any, settings: Settings, case_id: str) -> tuple[list[Any], list[Any]]:
    due = [e for e in await stream_events(js, settings, "debrief.action_due") if e.payload.case_id == case_id]
    requested = [
        e
        for e in await stream_events(js, settings, "notification.requested")
        if e.payload.case_id == case_id and e.payload.reason == DEBRIEF_ACTION_DUE
    ]
    return due, requested


async def test_an_open_action_is_reminded_once_per_due_time_across_a_restart_until_it_is_done(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"debrief_reminder_hours": EVERY_HOURS})
    load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")  # routing reads the public key at start
    clock = Clock()
    first = await start(settings, clock)
    async with jetstream(settings) as (_, js):
        try:
            await publish_raw(js, settings, a_concern_for_the_dsl_alone())
            [triaged] = await eventually(lambda: stream_events(js, settings, "case.triaged"), what="triage")
            case_id = triaged.payload.case_id
            due_on = (clock.now + timedelta(days=3)).date()
            for command, fields in [
                ("record_decision", {"kind": "not_refer", "decision": "No referral", "reasons": "Below threshold"}),
                ("record_outcome", {"outcome": "resolved_in_school", "summary": "Support in place"}),
                ("complete_investigation", {"summary": "Statements reviewed"}),
                ("close", {"summary": "Closed"}),
            ]:
                await ask(settings, clock, command, case_id=case_id, **fields)
            recorded = await ask(
                settings,
                clock,
                "record_debrief",
                case_id=case_id,
                lessons_learnt="Tutors did not know the reporting route",
                policy_changes=["Name the deputy DSL as the out-of-hours contact"],
                actions=[
                    {
                        "action_id": "brief-tutors",
                        "description": "Brief tutors",
                        "owner": "r-crane",
                        "due_on": str(due_on),
                    }
                ],
            )
            assert recorded["events"] == ["case.debrief_recorded", "deadline.set"]
            [pending] = await timers(first, case_id)
            listing = await ask(settings, clock, "debrief_actions")
            assert [(a["action_id"], a["owner"], a["overdue"]) for a in listing["actions"]] == [
                ("brief-tutors", "r-crane", False)
            ]
            [link] = listing["policy_changes"]
            assert (link["policy_version_in_force"], link["policy_version_adopted_after"]) == (1, None)
            assert (await ask(settings, clock, "debrief_actions", overdue=True))["actions"] == []
        finally:
            await stop(first)  # routing goes down with the reminder pending

        clock.now = pending.due_at + timedelta(seconds=1)
        second, third = await start(settings, clock), await start(settings, clock)  # restarted, and scaled out
        try:
            [due], requested = await eventually(
                lambda: reminders(js, settings, case_id),
                until=lambda found: bool(found[0] and found[1]),
                what="reminder",
            )
            await second.scheduler.fire_due(), await third.scheduler.fire_due()  # both instances look again
            assert len((await reminders(js, settings, case_id))[0]) == 1
            assert {r.payload.recipient.person_id for r in requested} == {"r-crane"}
            assert (due.payload.action_id, due.payload.reminder_number) == ("brief-tutors", 1)
            mine = await ask(settings, clock, "debrief_actions", person="r-crane")
            assert [(a["action_id"], a["reminders_sent"], a["overdue"]) for a in mine["actions"]] == [
                ("brief-tutors", 1, False)  # due today, not yet overdue
            ]

            clock.now += timedelta(hours=EVERY_HOURS, seconds=1)  # not done: reminded again
            await eventually(
                lambda: reminders(js, settings, case_id), until=lambda found: len(found[0]) == 2, what="repeat"
            )
            overdue = await ask(settings, clock, "debrief_actions", overdue=True)
            assert [(a["action_id"], a["reminders_sent"]) for a in overdue["actions"]] == [("brief-tutors", 2)]
            await ask(
                settings, clock, "complete_debrief_action", person="r-crane", case_id=case_id, action_id="brief-tutors"
            )
            clock.now += timedelta(hours=EVERY_HOURS * 3)  # done: never again
            await second.scheduler.fire_due(), await third.scheduler.fire_due()
            rows = await timers(second, case_id)
            assert (await ask(settings, clock, "debrief_actions"))["actions"] == []
        finally:
            await stop(second)
            await stop(third)
        due_events, requested = await reminders(js, settings, case_id)
    assert [e.payload.reminder_number for e in due_events] == [1, 2]
    assert len(requested) == 2 * len({r.payload.channel for r in requested}), "one request per channel per reminder"
    assert [(r.detail["reminder_number"], r.status) for r in rows] == [(1, "fired"), (2, "fired"), (3, "cancelled")]
