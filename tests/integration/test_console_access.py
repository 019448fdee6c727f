"""Who sees what in the console: every role x page x own school / other school / case about them; and RLS alone.

Every denied cell answers 403 or 404 and writes nothing (no read recorded, no command sent, no case changed).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from services.console.store import SCHEMA, accounts, cases, concerns, scoped
from shared.contracts.account_events import AccountChanged
from shared.contracts.record_events import RecordViewed
from shared.inbox_outbox import InboxOutbox
from shared.settings import Settings
from tests.support.admin import with_an_administrator
from tests.support.console import (
    Console,
    OpenedCase,
    add_user,
    another_client,
    console_running,
    csrf_of,
    open_case,
    projected,
    sign_in,
)
from tests.support.running import jetstream
from tests.support.schools import OTHER_SCHOOL, with_second_school

pytestmark = pytest.mark.integration

# Each role's account: the person the policy (or the school) knows them as.
PEOPLE = {
    "designated_safeguarding_lead": "s-bird",
    "deputy_designated_safeguarding_lead": "r-crane",
    "headteacher": "headteacher",
    "named_governor": "d-hill",
    "staff": "teacher-1",
    "trust_safeguarding_lead": "education-safeguarding-service",
    "auditor": "auditor-1",
    "trust_administrator": "admin-1",
}
READS_CASES = {
    "designated_safeguarding_lead",
    "deputy_designated_safeguarding_lead",
    "headteacher",
    "trust_safeguarding_lead",
    "auditor",
}
WORKS_CASES = {"designated_safeguarding_lead", "deputy_designated_safeguarding_lead", "headteacher"}
# The named governor has an inbox (for allegations about staff), empty of ordinary concerns.
HAS_INBOX = READS_CASES | {"named_governor"}
SEES_PEOPLE = {"designated_safeguarding_lead", "headteacher", "trust_administrator"}
# Counts per school and kind (no content), without cases about the viewer or other trusts' schools.
SEES_OVERVIEW = READS_CASES
# The record as it stood (audit replay, verify, export): auditors and the trust lead.
SEES_AUDIT = {"auditor", "trust_safeguarding_lead"}
BREAKS_GLASS = {
    "designated_safeguarding_lead",
    "deputy_designated_safeguarding_lead",
    "headteacher",
    "named_governor",
    "trust_safeguarding_lead",
}
WHY = "Needed in an emergency: the DSL cannot be reached"
JSON = {"Accept": "application/json"}


def expected_case(role: str, which: str) -> int:
    """The case page: another school's case, or one about the reader, does not exist for them."""
    if which == "other_school" or which == f"about_{role}":
        return 404
    return 200 if role in READS_CASES else 403


def expected_break_glass(role: str, which: str) -> int:
    """Break-glass: never for a case about oneself or another school's; a case one may open anyway just opens."""
    if which == "other_school" or which == f"about_{role}":
        return 404
    if role in READS_CASES:
        return 303
    return 200 if role in BREAKS_GLASS else 403


def expected_command(role: str, which: str) -> int:
    if which == "other_school" or which == f"about_{role}":
        return 404
    return 200 if role in WORKS_CASES else 403


async def read_count(console: Console) -> int:
    """Reads recorded: `record.viewed` events the console has put in its outbox."""
    outbox = InboxOutbox(SCHEMA).outbox
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == RecordViewed.TYPE)
    async with console.runtime.sessions() as session:
        return int(await session.scalar(query) or 0)


async def versions(console: Console) -> dict[str, int]:
    async with console.runtime.sessions() as session:
        return dict((await session.execute(sa.select(cases.c.case_id, cases.c.version))).all())  # type: ignore[arg-type]


async def seed_cases(console: Console, settings: Settings) -> dict[str, OpenedCase]:
    async with jetstream(settings) as (_, js):
        seeded = {
            "own_school": await open_case(js, settings, reporter_person_id="teacher-1"),
            "other_school": await open_case(js, settings, school_id=OTHER_SCHOOL),
            "about_deputy_designated_safeguarding_lead": await open_case(js, settings, subjects=("r-crane",)),
            # The headteacher is only possibly the subject: still hidden from them.
            "about_headteacher": await open_case(js, settings, subjects=("learner-9", "headteacher")),
        }
    for case in seeded.values():
        await projected(console, case.case_id)
    return seeded


async def test_every_role_sees_only_what_it_needs_and_a_refusal_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_second_school(settings, tmp_path / "policies")
    async with console_running(settings) as console, AsyncExitStack() as stack:
        seeded = await seed_cases(console, settings)
        clients: dict[str, httpx.AsyncClient] = {}
        for role, person in PEOPLE.items():
            await add_user(console, f"{person}@example.org", person=person, role=role)
            clients[role] = await sign_in(
                console, f"{person}@example.org", client=await stack.enter_async_context(another_client(console))
            )
        reads_before, versions_before = await read_count(console), await versions(console)
        denied: list[tuple[str, str, str, int]] = []
        for role, client in clients.items():
            csrf = csrf_of((await client.get("/my-reports")).text)
            for which, case in seeded.items():
                wanted = expected_command(role, which)
                if wanted != 200:
                    form = {"csrf_token": csrf, "command": "acknowledge"}
                    got = (await client.post(f"/cases/{case.case_id}/commands", data=form)).status_code
                    denied.append((role, "command", which, got))
                    assert got == wanted, (role, which, got)
                if expected_case(role, which) != 200:
                    got = (await client.get(f"/cases/{case.case_id}")).status_code
                    denied.append((role, "case", which, got))
                    assert got == expected_case(role, which), (role, which, got)
                if expected_break_glass(role, which) != 200:  # the cells that open are tried below
                    form = {"csrf_token": csrf, "reason": WHY}
                    got = (await client.post(f"/cases/{case.case_id}/break-glass", data=form)).status_code
                    if got != 303:
                        denied.append((role, "break_glass", which, got))
                    assert got == expected_break_glass(role, which), (role, which, got)
            inbox = await client.get("/inbox")
            assert inbox.status_code == (200 if role in HAS_INBOX else 403), role
            people = await client.get("/people")
            assert people.status_code == (200 if role in SEES_PEOPLE else 403), role
            assert (await client.get("/my-reports")).status_code == 200
            assert (await client.get("/audit")).status_code == (200 if role in SEES_AUDIT else 403), role
            other_trust = await client.get("/audit/cases", params={"school": OTHER_SCHOOL})
            assert other_trust.status_code == (404 if role in SEES_AUDIT else 403), role
            if role not in SEES_AUDIT:
                verify = await client.post("/audit/verify", data={"csrf_token": csrf, "school": "st-marks"})
                assert verify.status_code == 403, role
            # Anyone signed in may report a concern, and the device's outbox may ask for the session's token.
            assert (await client.get("/report")).status_code == 200, role
            # Anyone signed in may set up alerts on their own device (here notifications is not running: 503), never
            # without the form's token; nothing is recorded unless notifications did it.
            assert (await client.get("/me/device")).status_code == 200, role
            push = {"action": "subscribe", "subscription": '{"endpoint": "https://push.example.org/x", "keys": {}}'}
            assert (await client.post("/me/device/push", data=push)).status_code == 403, role
            sent = await client.post("/me/device/push", data={**push, "csrf_token": csrf}, headers=JSON)
            assert sent.status_code == 503 and sent.json()["ok"] is False, role
            assert (await client.get("/session/csrf", headers={"Accept": "application/json"})).status_code == 200
            for overview in ("/overview", "/overview.csv"):
                answer = await client.get(overview)
                assert answer.status_code == (200 if role in SEES_OVERVIEW else 403), (role, overview)
            if role in SEES_OVERVIEW:
                # Each section after an empty line and its header: per school and kind first, then per month,
                # deadlines, debrief actions and policy reviews. No other school's row in any of them.
                first, *others = [part.splitlines()[1:] for part in answer.text.split("\n\n")]
                assert {row.split(",")[0] for row in first} == {"st-marks"}, role
                assert {row.split(",")[1] for row in others[0]} == {"st-marks"}, role
                assert {row.split(",")[0] for part in others[1:] for row in part} <= {"st-marks"}, role
                counted = sum(int(row.split(",")[2]) for row in first)
                assert counted == len([w for w in seeded if expected_case(role, w) != 404]), role
            if inbox.status_code == 200:
                listed = {which for which, case in seeded.items() if case.reference in inbox.text}
                assert listed == {w for w in seeded if expected_case(role, w) == 200}, role
        assert await read_count(console) == reads_before
        assert await versions(console) == versions_before
        assert await changes_recorded(console) == 0
        async with another_client(console) as stranger:
            assert (await stranger.get("/me/device")).status_code == 303
            assert (await stranger.post("/me/device/push", data={}, headers=JSON)).status_code == 401
        assert denied and all(status in (403, 404) for *_, status in denied)
        for role in READS_CASES:
            page = await clients[role].get(f"/cases/{seeded['own_school'].case_id}")
            assert page.status_code == 200, role
        assert await read_count(console) == reads_before + len(READS_CASES)
        # The one role need-to-know keeps from ordinary concerns opens them by break-glass, each read recorded.
        governor = clients["named_governor"]
        csrf = csrf_of((await governor.get("/my-reports")).text)
        opened = [which for which in seeded if expected_break_glass("named_governor", which) == 200]
        for which in opened:
            form = {"csrf_token": csrf, "reason": WHY}
            broke = await governor.post(f"/cases/{seeded[which].case_id}/break-glass", data=form)
            assert broke.status_code == 200 and seeded[which].reference in broke.text, which
        assert opened and await read_count(console) == reads_before + len(READS_CASES) + len(opened)


async def test_staff_see_their_own_reports_status_and_nothing_of_their_content(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_second_school(settings, tmp_path / "policies")
    async with console_running(settings) as console:
        seeded = await seed_cases(console, settings)
        await add_user(console, "teacher@example.org", person="teacher-1", role="staff")
        await sign_in(console, "teacher@example.org")
        mine = await console.client.get("/my-reports")
    assert seeded["own_school"].reference in mine.text
    assert seeded["other_school"].reference not in mine.text
    assert "Hurtful messages" not in mine.text


async def test_row_level_security_keeps_other_schools_out_without_the_python_check(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_second_school(settings, tmp_path / "policies")
    async with console_running(settings) as console:
        seeded = await seed_cases(console, settings)
        st_marks_only = {"st-marks"}
        async with scoped(console.runtime.sessions, school_ids=st_marks_only) as session:
            seen = set((await session.execute(sa.select(cases.c.school_id))).scalars())
            other = (
                await session.execute(sa.select(cases).where(cases.c.case_id == seeded["other_school"].case_id))
            ).one_or_none()
        async with scoped(console.runtime.sessions, school_ids=()) as session:
            nothing = (await session.execute(sa.select(sa.func.count()).select_from(cases))).scalar()
        with pytest.raises(DBAPIError, match="row-level security"):
            async with scoped(console.runtime.sessions, school_ids=st_marks_only) as session:
                await session.execute(
                    sa.insert(concerns).values(school_id=OTHER_SCHOOL, event_id="x", reference="x", body={})
                )
    assert seen == {"st-marks"}
    assert other is None
    assert nothing == 0


async def test_the_overview_draws_its_bars_on_the_server_and_downloads_as_csv(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_second_school(settings, tmp_path / "policies")
    async with console_running(settings) as console:
        await seed_cases(console, settings)
        await add_user(console, "lead@example.org", person="s-bird", role="designated_safeguarding_lead")
        await sign_in(console, "lead@example.org")
        page = await console.client.get("/overview")
        download = await console.client.get("/overview.csv")
    assert page.status_code == 200
    assert '<svg class="bars" role="img" aria-label="Concerns per school"' in page.text
    assert "<script" not in page.text.split("</head>", 1)[1]
    assert download.headers["content-disposition"] == 'attachment; filename="safeguard-overview.csv"'
    assert download.text.splitlines()[1] == "st-marks,online_bullying,3,3,0"


ADMINISTERS = {"designated_safeguarding_lead", "headteacher", "trust_administrator"}


async def account_rows(console: Console) -> list[tuple[str, Any]]:
    async with console.runtime.sessions() as session:
        query = sa.select(accounts.c.username, accounts.c.disabled_at, accounts.c.totp_secret)
        return sorted((row.username, tuple(row)) for row in await session.execute(query))


async def changes_recorded(console: Console) -> int:
    outbox = InboxOutbox(SCHEMA).outbox
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == AccountChanged.TYPE)
    async with console.runtime.sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_admin_pages_answer_administrators_only_and_a_refusal_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_an_administrator(settings, tmp_path / "policies")
    async with console_running(settings) as console, AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        for role, person in PEOPLE.items():
            await add_user(console, f"{person}@example.org", person=person, role=role)
            clients[role] = await sign_in(
                console, f"{person}@example.org", client=await stack.enter_async_context(another_client(console))
            )
        await add_user(
            console, "oak-dsl@example.org", person="s-bird", role="designated_safeguarding_lead", school=OTHER_SCHOOL
        )
        async with console.runtime.sessions() as session:
            ids = dict((await session.execute(sa.select(accounts.c.username, accounts.c.account_id))).all())  # type: ignore[arg-type]
        target, oak = ids["r-crane@example.org"], ids["oak-dsl@example.org"]
        before, recorded = await account_rows(console), await changes_recorded(console)
        for role, client in clients.items():
            csrf = csrf_of((await client.get("/my-reports")).text)
            allowed = role in ADMINISTERS
            reads = {
                "/admin": 200 if allowed else 403,
                "/admin/schools/st-marks": 200 if allowed else 403,
                "/admin/schools/st-marks/policy.yaml": 200 if allowed else 403,
                f"/admin/schools/{OTHER_SCHOOL}": 404 if allowed else 403,
            }
            for url, wanted in reads.items():
                assert (await client.get(url)).status_code == wanted, (role, url)
            new = {"csrf_token": csrf, "username": f"new-{role}", "person_id": "teacher-1", "role": "staff"}
            writes = {
                "/admin/schools/st-marks/accounts": (new, 200 if allowed else 403),
                f"/admin/schools/{OTHER_SCHOOL}/accounts": (new, 404 if allowed else 403),
                f"/admin/accounts/{oak}/disable": ({"csrf_token": csrf}, 404 if allowed else 403),
                f"/admin/schools/{OTHER_SCHOOL}/quiet-hours": (
                    {"csrf_token": csrf, "starts": "", "ends": ""},
                    404 if allowed else 403,
                ),
                f"/admin/schools/{OTHER_SCHOOL}/people/s-bird/quiet-hours": (
                    {"csrf_token": csrf, "starts": "18:00", "ends": "08:00"},
                    404 if allowed else 403,
                ),
                "/admin/schools/st-marks/policy/adopt": (
                    {"csrf_token": csrf, "policy_text": "version: 9"},
                    400 if allowed else 403,
                ),
            }
            if not allowed:
                writes[f"/admin/accounts/{target}/disable"] = ({"csrf_token": csrf}, 403)
                writes[f"/admin/accounts/{target}/reset-second-factor"] = ({"csrf_token": csrf}, 403)
            for url, (form, wanted) in writes.items():
                if wanted == 200:
                    continue  # an administrator's own account creation is covered in test_console_admin.py
                got = (await client.post(url, data=form)).status_code
                assert got == wanted, (role, url, got)
            # Without the CSRF token nothing is done, even for an administrator.
            assert (await client.post(f"/admin/accounts/{target}/disable", data={})).status_code == 403, role
        # A school's DSL may not give a trust-wide account.
        dsl_csrf = csrf_of((await clients["designated_safeguarding_lead"].get("/admin")).text)
        auditor = {"csrf_token": dsl_csrf, "username": "new-auditor", "person_id": "auditor-2", "role": "auditor"}
        assert (
            await clients["designated_safeguarding_lead"].post("/admin/schools/st-marks/accounts", data=auditor)
        ).status_code == 403
        assert await account_rows(console) == before
        assert await changes_recorded(console) == recorded
