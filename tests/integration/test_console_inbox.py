"""The DSL's inbox and case page against real NATS + PostgreSQL, with routing answering the commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.routing.store import OpenedCase as RoutingOpenedCase
from services.routing.store import SqlCaseEvents, SqlDeadlines
from shared.contracts.envelope import utc_now
from shared.db import transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.console import OpenedCase, add_user, console_running, csrf_of, open_case, projected, sign_in
from tests.support.routing_commands import routing_answering_commands
from tests.support.running import jetstream, running
from tests.support.schools import OTHER_SCHOOL, with_second_school

pytestmark = pytest.mark.integration

DSL = {"person": "s-bird", "role": "designated_safeguarding_lead"}


async def routing_knows(runtime: ServiceRuntime, case: OpenedCase) -> None:
    """Routing's own record of the case, as it keeps one when it opens a case."""
    opened = RoutingOpenedCase(case.case_id, case.school_id, case.reference, case.events, 1, utc_now())
    async with transaction(runtime.sessions) as session:
        await SqlCaseEvents().open_all(session, [opened])


async def test_a_new_concern_reaches_the_live_inbox_without_a_reload(settings: Settings, tmp_path: Path) -> None:
    settings = with_second_school(settings, tmp_path / "policies")
    async with console_running(settings) as console, jetstream(settings) as (_, js):
        await add_user(console, "dsl@example.org", **DSL)
        await sign_in(console, "dsl@example.org")
        inbox = await console.client.get("/inbox")
        events_url = re.search(r'data-events="([^"]+)"', inbox.text)
        assert events_url
        urgent = await open_case(js, settings, urgency="immediate")
        elsewhere = await open_case(js, settings, school_id=OTHER_SCHOOL)
        await projected(console, urgent.case_id)
        await projected(console, elsewhere.case_id)
        stream = await console.client.get(events_url.group(1).replace("&amp;", "&"))
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert f'"reference": "{urgent.reference}"' in stream.text
    assert '"urgency": "immediate"' in stream.text
    assert elsewhere.reference not in stream.text


async def test_the_dsl_acknowledges_in_one_tap_and_works_the_case_to_closure(settings: Settings) -> None:
    routing, book = routing_answering_commands(settings)
    async with running(routing), console_running(settings) as console, jetstream(settings) as (_, js):
        async with routing.uow.begin() as work:
            await book.adopt_folder(settings.policy_dir, session=work.session, deadlines=SqlDeadlines(), now=utc_now())
        await add_user(console, "dsl@example.org", **DSL)
        case = await open_case(js, settings, urgency="immediate")
        await routing_knows(routing, case)
        await projected(console, case.case_id)
        await sign_in(console, "dsl@example.org")
        inbox = await console.client.get("/inbox")
        csrf = csrf_of(inbox.text)
        tapped = await console.client.post(
            f"/cases/{case.case_id}/commands", data={"csrf_token": csrf, "command": "acknowledge"}
        )
        acknowledged = await projected(console, case.case_id, version=3)
        steps = [
            {"command": "record_action", "action": "spoke_to_learner", "details": "Learner spoken to"},
            {
                "command": "record_decision",
                "kind": "not_refer",
                "decision": "No referral",
                "reasons": "Below threshold",
            },
            {"command": "record_outcome", "outcome": "resolved_in_school", "summary": "Support in place"},
            {"command": "close", "summary": "Resolved"},
        ]
        answers = []
        for step in steps:
            answer = await console.client.post(f"/cases/{case.case_id}/commands", data={"csrf_token": csrf, **step})
            answers.append(answer.status_code)
        closed = await projected(console, case.case_id, version=7)
        page = await console.client.get(f"/cases/{case.case_id}")
        too_late = await console.client.post(
            f"/cases/{case.case_id}/commands", data={"csrf_token": csrf, "command": "reopen"}
        )
    assert tapped.status_code == 303
    assert (acknowledged.status, acknowledged.acknowledged_by) == ("in_progress", "s-bird")
    assert answers == [303, 303, 303, 303]
    assert (closed.status, closed.outcome) == ("closed", "resolved_in_school")
    for seen in (
        "case.acknowledged",
        "case.decision_recorded",
        "Below threshold",
        "bullying-online",
        "policy version 1",
    ):
        assert seen in page.text
    assert too_late.status_code == 409 and "reason" in too_late.text


async def test_the_dsl_sends_the_schools_message_to_a_parent_from_the_case_page_once_the_decision_is_inform(
    settings: Settings,
) -> None:
    routing, book = routing_answering_commands(settings)
    async with running(routing), console_running(settings) as console, jetstream(settings) as (_, js):
        async with routing.uow.begin() as work:
            await book.adopt_folder(settings.policy_dir, session=work.session, deadlines=SqlDeadlines(), now=utc_now())
        await add_user(console, "dsl@example.org", **DSL)
        case = await open_case(js, settings)  # triage left parents to the DSL
        await routing_knows(routing, case)
        await projected(console, case.case_id)
        await sign_in(console, "dsl@example.org")
        undecided = await console.client.get(f"/cases/{case.case_id}")
        csrf = csrf_of(undecided.text)
        post = {"csrf_token": csrf, "command": "inform_parents", "name": "Pat Example", "relationship": "mother"}
        early = await console.client.post(
            f"/cases/{case.case_id}/commands", data={**post, "channel": "email", "address": "pat@example.org"}
        )
        decided = await console.client.post(
            f"/cases/{case.case_id}/commands",
            data={
                "csrf_token": csrf,
                "command": "decide_parent_notification",
                "decision": "inform",
                "reason": "Agreed",
            },
        )
        await projected(console, case.case_id, version=4)  # the decision, and the refusal recorded before it
        decided_page = await console.client.get(f"/cases/{case.case_id}")
        typo = await console.client.post(
            f"/cases/{case.case_id}/commands", data={**post, "channel": "email", "address": "pat-at-example.org"}
        )
        sent = await console.client.post(
            f"/cases/{case.case_id}/commands", data={**post, "channel": "email", "address": "pat@example.org"}
        )
        await projected(console, case.case_id, version=5)
        after = await console.client.get(f"/cases/{case.case_id}")
        without_csrf = await console.client.post(
            f"/cases/{case.case_id}/commands", data={**post, "csrf_token": "", "address": "sam@example.org"}
        )
    assert 'value="inform_parents"' not in undecided.text  # the form shows only once the decision is inform
    assert early.status_code == 409 and "nobody has decided to inform them yet" in early.text
    assert decided.status_code == 303
    assert 'value="inform_parents"' in decided_page.text and case.reference in decided_page.text
    assert typo.status_code == 409 and "not an email address" in typo.text
    assert sent.status_code == 303
    assert "The school's message went to: mother by email" in after.text
    assert "case.parents_informed" in after.text and "case.command_refused" in after.text
    assert without_csrf.status_code == 403
