"""The trust overview's outstanding duties against real NATS + PostgreSQL, with routing answering the commands.

A debrief recorded through routing with two actions shows two outstanding, one marked done leaves one, and the
overdue one is marked; a policy deadline (consider a LADO referral) past due, an unacknowledged case past its
acknowledgement deadline and the policy's review date past are shown as overdue; the CSV has each section; a
school's DSL sees only their school, the trust's lead every school of the trust; row-level security keeps the
new tables to the person's schools without the Python check; the migration fills them from the chronology.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from services.console.store import deadlines, debrief_actions, scoped
from services.routing.domain import deadline_event
from services.routing.store import SqlDeadlines
from shared.contracts.case_events import (
    DebriefActionDue,
    DebriefActionDuePayload,
)
from shared.contracts.envelope import utc_now
from shared.contracts.events import DeadlineReached, DeadlineReachedPayload, PolicyReviewDue, PolicyReviewDuePayload
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.integration.test_console_inbox import routing_knows
from tests.integration.test_debrief_reminders import ask
from tests.integration.test_timers import Clock
from tests.support.console import (
    ROUTING,
    OpenedCase,
    add_user,
    another_client,
    console_running,
    open_case,
    projected,
)
from tests.support.console import sign_in as console_sign_in
from tests.support.routing_commands import routing_answering_commands
from tests.support.running import jetstream, publish_raw, running
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

OTHER = "oak-academy"
TRUST = "Test Schools Trust"


def one_trust(settings: Settings, folder: Path) -> Settings:
    """St Mark's (review date long past) and Oak Academy (review in 2099) as two schools of one trust."""
    folder.mkdir(parents=True, exist_ok=True)
    st_marks = (
        (REPO_ROOT / "deploy" / "policies" / "st-marks.yaml").read_text().replace("trust: null", f"trust: {TRUST}")
    )
    (folder / "st-marks.yaml").write_text(st_marks)
    oak = st_marks.replace("  id: st-marks\n  name: St Mark's CEP School\n", f"  id: {OTHER}\n  name: Oak Academy\n")
    (folder / f"{OTHER}.yaml").write_text(oak.replace("next_review: 2022-10-31", "next_review: 2099-12-31"))
    return settings.model_copy(update={"policy_dir": str(folder)})


def section(html: str, anchor: str) -> str:
    """The page from the heading with this id to the next heading."""
    start = html.index(f'<h2 id="{anchor}">')
    following = html.find("<h2", start + 1)
    return html[start : following if following != -1 else len(html)]


def rows_of(html: str) -> list[str]:
    """Each body row of a section's table, its cells' text joined by '|'."""
    body = html.split("<tbody>", 1)[1] if "<tbody>" in html else ""
    return [
        "|".join(re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row))
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    ]


def csv_sections(text: str) -> dict[str, list[list[str]]]:
    """The CSV's sections by their header's third column (each section after an empty line)."""
    found = {}
    for part in text.split("\n\n"):
        rows = list(csv.reader(io.StringIO(part)))
        found[rows[0][2]] = rows[1:]
    return found


def lado_deadline(case: OpenedCase, *, hours_past: float = 1.0) -> Any:
    """The deadline the policy sets on an allegation, past by `hours_past`, as routing sets it at triage."""
    now = utc_now()
    return deadline_event(
        case_id=case.case_id,
        kind="consider_lado_referral",
        due_at=now - timedelta(hours=hours_past),
        description="Consider a referral to the LADO (allegations against staff).",
        rung=0,
        school_id=case.school_id,
        cause=case.events[0],
        now=now - timedelta(days=1),
    )


def fully_reminded(html: str) -> bool:
    """The overview shows the action's reminders, the LADO deadline's and the policy review's."""
    due = [row.split("|") for row in rows_of(section(html, "deadlines"))]
    reviews = [row.split("|") for row in rows_of(section(html, "policy-reviews"))]
    return "reminded 2×" in html and any(row[2] != "acknowledge" and row[4] for row in due) and reviews[0][3] != ""


async def overview(client: Any) -> str:
    page = await client.get("/overview")
    assert page.status_code == 200
    return str(page.text)


async def test_debrief_actions_deadlines_and_policy_reviews_outstanding_per_school(
    settings: Settings, tmp_path: Path
) -> None:
    settings = one_trust(settings, tmp_path / "policies")
    routing, book = routing_answering_commands(settings)
    async with running(routing), console_running(settings) as console, jetstream(settings) as (_, js):
        async with routing.uow.begin() as work:
            adopted = await book.adopt_folder(
                settings.policy_dir, session=work.session, deadlines=SqlDeadlines(), now=utc_now()
            )
        for event in adopted:  # policy.adopted and the review timer, as routing's outbox sends them
            await publish_raw(js, settings, event)
        worked = await open_case(js, settings)
        waiting = await open_case(js, settings)  # never acknowledged
        about_the_dsl = await open_case(js, settings, subjects=("s-bird",))
        elsewhere = await open_case(js, settings, school_id=OTHER)
        await routing_knows(routing, worked)
        lado = lado_deadline(worked)
        for deadline in (lado, lado_deadline(about_the_dsl), lado_deadline(elsewhere)):
            await publish_raw(js, settings, deadline)
        for case in (worked, waiting, about_the_dsl, elsewhere):
            await projected(console, case.case_id)

        await ask(settings, Clock(utc_now()), "acknowledge", case_id=worked.case_id)
        await ask(settings, Clock(utc_now()), "complete_investigation", case_id=worked.case_id, summary="Investigated")
        today = date.today()
        actions = [
            {
                "action_id": "train-staff",
                "description": "Synthetic action",
                "owner": "r-crane",
                "due_on": str(today - timedelta(days=3)),
            },
            {
                "action_id": "update-policy",
                "description": "Synthetic action",
                "owner": "s-bird",
                "due_on": str(today + timedelta(days=30)),
            },
        ]
        await ask(
            settings,
            Clock(utc_now()),
            "record_debrief",
            case_id=worked.case_id,
            lessons_learnt="Synthetic lessons",
            actions=actions,
        )
        await projected(console, worked.case_id, version=5)

        await add_user(console, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
        await add_user(
            console, "lead@example.org", person="education-safeguarding-service", role="trust_safeguarding_lead"
        )
        dsl = await console_sign_in(console, "dsl@example.org")
        async with another_client(console) as lead_client:
            lead = await console_sign_in(console, "lead@example.org", client=lead_client)
            console.clock.advance(2 * 3600)  # the unacknowledged case is now past its acknowledgement deadline
            two_open = await overview(dsl)

            await ask(
                settings, Clock(utc_now()), "complete_debrief_action", case_id=worked.case_id, action_id="update-policy"
            )
            await projected(console, worked.case_id, version=6)
            reminder = DebriefActionDue.new(
                DebriefActionDuePayload(
                    case_id=worked.case_id,
                    reference=worked.reference,
                    action_id="train-staff",
                    owner_id="r-crane",
                    reminded=["r-crane"],
                    due_on=today - timedelta(days=3),
                    reminder_number=2,
                    repeats_every_hours=24,
                ),
                school_id="st-marks",
                aggregate_id=f"{worked.case_id}:train-staff",
                actor=ROUTING,
                occurred_at=utc_now(),
            )
            fired = DeadlineReached.new(
                DeadlineReachedPayload(
                    deadline_id=lado.payload.deadline_id,
                    case_id=worked.case_id,
                    kind="consider_lado_referral",
                    due_at=lado.payload.due_at,
                    outcome="reminded",
                ),
                school_id="st-marks",
                aggregate_id=lado.payload.deadline_id,
                actor=ROUTING,
                occurred_at=utc_now(),
            )
            review = PolicyReviewDue.new(
                PolicyReviewDuePayload(version=1, review_due="2022-10-31", recipients=[]),
                school_id="st-marks",
                aggregate_id="st-marks:v1",
                actor=ROUTING,
                occurred_at=utc_now(),
            )
            for event in (reminder, fired, review):
                await publish_raw(js, settings, event)

            async def reminded() -> str:
                return await overview(dsl)

            one_open = await eventually(reminded, until=fully_reminded, what="the reminders on the overview")
            download = (await dsl.get("/overview.csv")).text
            trust_wide = await overview(lead)

    # Two actions outstanding, then one; the overdue one marked; owners and due dates, never what they say.
    assert len(rows_of(section(two_open, "debrief-actions"))) == 2
    [left] = rows_of(section(one_open, "debrief-actions"))
    assert left.startswith(f"st-marks|{worked.reference}|train-staff|r-crane|") and "(overdue), reminded 2×" in left
    assert "Synthetic action" not in one_open and "Synthetic lessons" not in one_open
    # The LADO deadline of the worked case and the waiting case's acknowledgement, both overdue; nothing about the
    # DSL, nothing from the other school.
    due = rows_of(section(one_open, "deadlines"))
    assert sorted(row.split("|")[1:3] for row in due) == sorted(
        [[worked.reference, "consider lado referral"], [waiting.reference, "acknowledge"]]
    )
    assert all("(overdue)" in row for row in due)
    assert next(row for row in due if "lado" in row).split("|")[4]  # reminded at
    assert about_the_dsl.reference not in one_open and elsewhere.reference not in one_open
    # The policy's review date, past and reminded.
    [st_marks_review] = rows_of(section(one_open, "policy-reviews"))
    assert st_marks_review.startswith("st-marks|1|31 Oct 2022 (overdue)|") and st_marks_review.split("|")[3]
    assert '<svg class="bars" role="img" aria-label="Concerns per month"' in one_open
    # The CSV: every section, the same rows.
    sections = csv_sections(download)
    assert [row[:3] + row[4:6] for row in sections["debrief_action"]] == [
        ["st-marks", worked.reference, "train-staff", str(today - timedelta(days=3)), "yes"]
    ]
    assert sorted((row[1], row[2], row[4]) for row in sections["deadline"]) == sorted(
        [(worked.reference, "consider_lado_referral", "yes"), (waiting.reference, "acknowledge", "yes")]
    )
    assert sections["review_due"] == [["st-marks", "1", "2022-10-31", "yes", sections["review_due"][0][4]]]
    assert {row[0] for row in sections["concerns"]} == {"st-marks"}
    assert {row[1] for row in sections["kind"]} == {"st-marks"}  # concerns per month
    # The trust's lead: both schools of the trust, Oak Academy's review not due until 2099.
    assert elsewhere.reference in section(trust_wide, "deadlines")
    reviews = rows_of(section(trust_wide, "policy-reviews"))
    assert [row.split("|")[:3] for row in reviews] == [
        [OTHER, "1", "31 Dec 2099"],
        ["st-marks", "1", "31 Oct 2022 (overdue)"],
    ]


async def test_row_level_security_keeps_the_new_tables_to_the_persons_schools(settings: Settings) -> None:
    async with console_running(settings) as console:
        async with console.runtime.sessions() as session, session.begin():  # unscoped, as the read model writes
            for school in ("st-marks", OTHER):
                await session.execute(
                    sa.insert(deadlines).values(
                        deadline_id=f"d-{school}", school_id=school, case_id=f"c-{school}", kind="k", due_at=utc_now()
                    )
                )
                await session.execute(
                    sa.insert(debrief_actions).values(
                        case_id=f"c-{school}", action_id="a", school_id=school, owner="p", due_on=date.today()
                    )
                )
        async with scoped(console.runtime.sessions, school_ids={"st-marks"}) as session:
            seen = {
                table.name: set((await session.execute(sa.select(table.c.school_id))).scalars())
                for table in (deadlines, debrief_actions)
            }
        for table, row in (
            (deadlines, {"deadline_id": "x", "case_id": "x", "kind": "k", "due_at": utc_now()}),
            (debrief_actions, {"case_id": "x", "action_id": "x", "owner": "p", "due_on": date.today()}),
        ):
            with pytest.raises(DBAPIError, match="row-level security"):
                async with scoped(console.runtime.sessions, school_ids={"st-marks"}) as session:
                    await session.execute(sa.insert(table).values(school_id=OTHER, **row))
    assert seen == {"deadlines": {"st-marks"}, "debrief_actions": {"st-marks"}}
