"""The admin pages: a policy version checked, diffed and adopted through routing; accounts given and taken away.

Against real NATS and PostgreSQL: routing adopts (and refuses) over its signed request/reply subject, and every
account change lands in the console's outbox as `account.changed` with the administrator as the actor.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from services.console.commands import ISSUER
from services.console.store import SCHEMA, policies
from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.contracts.account_events import AccountChanged
from shared.contracts.envelope import utc_now
from shared.inbox_outbox import InboxOutbox
from shared.settings import Settings
from shared.subjects import Subjects
from tests.support.admin import ADMINISTRATOR, raised, routing_adopting, with_an_administrator
from tests.support.console import (
    PASSWORD,
    Console,
    add_user,
    another_client,
    console_running,
    csrf_of,
    password_step,
    sign_in,
)
from tests.support.running import jetstream, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

QUIET = ('quiet_hours: {starts: "21:00", ends: "07:00"}', 'quiet_hours: {starts: "22:00", ends: "07:00"}')


async def adopted_versions(console: Console, school_id: str = "st-marks") -> list[tuple[int, str]]:
    query = sa.select(policies.c.version, policies.c.adopted_by).where(policies.c.school_id == school_id)
    async with console.runtime.sessions() as session:
        return sorted((row.version, row.adopted_by) for row in await session.execute(query))


async def account_changes(console: Console) -> list[dict[str, Any]]:
    outbox = InboxOutbox(SCHEMA).outbox
    query = sa.select(outbox.c.body).where(outbox.c.event_type == AccountChanged.TYPE).order_by(outbox.c.position)
    async with console.runtime.sessions() as session:
        bodies = (await session.execute(query)).scalars()
        return [json.loads(body) for body in bodies]


def shown_secret(page: str) -> str:
    found = re.search(r"Secret: <code>([A-Z2-7]+)</code>", page)
    assert found, "the page shows no TOTP secret"
    return found.group(1)


async def test_a_trust_administrator_checks_diffs_and_adopts_a_new_policy_version(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_an_administrator(settings, tmp_path / "policies")
    text = (Path(settings.policy_dir) / "st-marks.yaml").read_text()
    async with routing_adopting(settings), console_running(settings) as console, jetstream(settings) as (_, js):
        await eventually(lambda: adopted_versions(console), what="version 1 projected")
        await add_user(console, "admin@example.org", person=ADMINISTRATOR, role="trust_administrator")
        await sign_in(console, "admin@example.org")
        schools = await console.client.get("/admin")
        school = await console.client.get("/admin/schools/st-marks")
        csrf = csrf_of(school.text)
        own_quiet = await console.client.post(
            "/admin/schools/st-marks/people/s-bird/quiet-hours",
            data={"csrf_token": csrf, "starts": "18:00", "ends": "08:00"},
        )
        nobody = await console.client.post(
            "/admin/schools/st-marks/people/no-such-person/quiet-hours",
            data={"csrf_token": csrf, "starts": "18:00", "ends": "08:00"},
        )
        unraised = await console.client.post(
            "/admin/schools/st-marks/policy/check",
            data={"csrf_token": csrf},
            files={"policy_file": ("st-marks.yaml", raised(text, to=1, change=QUIET).encode())},
        )
        version_2 = raised(text, to=2, change=QUIET)
        checked = await console.client.post(
            "/admin/schools/st-marks/policy/check",
            data={"csrf_token": csrf},
            files={"policy_file": ("st-marks.yaml", version_2.encode())},
        )
        adopt = await console.client.post(
            "/admin/schools/st-marks/policy/adopt", data={"csrf_token": csrf, "policy_text": version_2}
        )
        versions = await eventually(
            lambda: adopted_versions(console), until=lambda v: len(v) == 2, what="version 2 projected"
        )
        again = await console.client.post(
            "/admin/schools/st-marks/policy/adopt", data={"csrf_token": csrf, "policy_text": version_2}
        )
        events = await stream_events(js, settings, "policy.adopted")
    assert schools.status_code == 200 and "St Mark" in schools.text and "oak-academy" not in schools.text
    assert "trust administrator" in school.text and "admin@example.org" in school.text
    assert unraised.status_code == 400 and "Raise the version: 1 is adopted" in unraised.text
    # A person's own quiet hours become the next version, checked and diffed like any other change.
    assert own_quiet.status_code == 200 and "version 2" in own_quiet.text
    own_diff = html.unescape(re.sub(r"<[^>]+>", "", own_quiet.text))
    assert "-    quiet_hours: null" in own_diff and "+      starts: '18:00:00'" in own_diff
    assert nobody.status_code == 404
    assert checked.status_code == 200
    assert "valid policy for St Mark&#39;s CEP School (st-marks), version 2" in checked.text
    diff = html.unescape(re.sub(r"<[^>]+>", "", checked.text))
    assert "-version: 1\n" in diff and "+version: 2\n" in diff
    assert "-    starts: '21:00:00'" in diff and "+    starts: '22:00:00'" in diff
    assert "Adopt version 2" in checked.text
    assert adopt.status_code == 303 and adopt.headers["location"] == "/admin/schools/st-marks?adopted=2"
    assert versions == [(1, "routing"), (2, ADMINISTRATOR)]
    assert [(e.payload.version, e.actor.id, e.actor.role) for e in events if e.school_id == "st-marks"] == [
        (1, "routing", "service"),
        (2, ADMINISTRATOR, "trust_administrator"),
    ]
    assert again.status_code == 400 and "Raise the version: 2 is adopted" in again.text


async def test_routing_adopts_only_for_a_keeper_the_policy_in_force_names(settings: Settings, tmp_path: Path) -> None:
    settings = with_an_administrator(settings, tmp_path / "policies")
    text = (Path(settings.policy_dir) / "st-marks.yaml").read_text()
    key = load_or_create_issuer_key(settings.actor_keys_dir, issuer=ISSUER)
    subject = Subjects.from_settings(settings).command("routing", "policy")

    def asking(person: str, school: str, policy: str) -> str:
        assertion = issue(key, issuer=ISSUER, person_id=person, school_id=school, now=utc_now())
        return json.dumps({"command": "adopt_policy", "school_id": school, "policy": policy, "assertion": assertion})

    async with routing_adopting(settings), jetstream(settings) as (client, js):

        async def ask(body: str) -> dict[str, Any]:
            return dict(json.loads((await client.request(subject, body.encode(), timeout=10)).data))

        deputy = await ask(asking("r-crane", "st-marks", raised(text, to=2, change=QUIET)))
        elsewhere = await ask(asking(ADMINISTRATOR, "oak-academy", raised(text, to=2)))
        unraised = await ask(asking("s-bird", "st-marks", raised(text, to=1, change=QUIET)))
        by_dsl = await ask(asking("s-bird", "st-marks", raised(text, to=3, change=QUIET)))
        replayed_body = asking("s-bird", "st-marks", raised(text, to=4))
        first = await ask(replayed_body)
        replayed = await ask(replayed_body)
        refused = await eventually(
            lambda: stream_events(js, settings, "case.command_refused"),
            until=lambda found: {e.payload.code for e in found} >= {"not_a_policy_keeper", "replayed"},
            what="both refusals on the stream",
        )
    assert deputy["code"] == "not_a_policy_keeper"
    assert "the trust administrator" in deputy["error"]
    assert elsewhere["code"] == "not_a_policy_keeper"  # Oak Academy's policy does not name admin-1
    assert unraised == {"ok": False, "code": "not_raised", "error": unraised["error"]}
    assert "must say version 2 or higher" in unraised["error"]
    assert by_dsl["ok"] and by_dsl["version"] == 3
    assert first["ok"] and replayed["code"] == "replayed"
    assert {e.payload.code for e in refused} >= {"not_a_policy_keeper", "replayed"}


async def test_accounts_given_disabled_enabled_and_reset_are_recorded_with_the_administrator(
    settings: Settings, tmp_path: Path
) -> None:
    settings = with_an_administrator(settings, tmp_path / "policies")
    async with console_running(settings) as console, another_client(console) as deputy:
        await add_user(console, "head@example.org", person="headteacher", role="headteacher")
        await sign_in(console, "head@example.org")
        csrf = csrf_of((await console.client.get("/admin/schools/st-marks")).text)
        form = {"csrf_token": csrf, "username": "deputy@example.org", "person_id": "r-crane", "password": PASSWORD}
        not_theirs = await console.client.post(
            "/admin/schools/st-marks/accounts", data={**form, "role": "designated_safeguarding_lead"}
        )
        trust_wide = await console.client.post("/admin/schools/st-marks/accounts", data={**form, "role": "auditor"})
        made = await console.client.post(
            "/admin/schools/st-marks/accounts", data={**form, "role": "deputy_designated_safeguarding_lead"}
        )
        console.secrets["deputy@example.org"] = shown_secret(made.text)
        await sign_in(console, "deputy@example.org", client=deputy)
        account_id = re.search(
            r"/admin/accounts/([0-9a-f-]+)/disable", (await console.client.get("/admin/schools/st-marks")).text
        )
        assert account_id
        disabled = await console.client.post(
            f"/admin/accounts/{account_id.group(1)}/disable", data={"csrf_token": csrf}
        )
        signed_out = await deputy.get("/inbox")
        refused = await password_step(deputy, "deputy@example.org")
        await console.client.post(f"/admin/accounts/{account_id.group(1)}/enable", data={"csrf_token": csrf})
        old_secret = console.secrets["deputy@example.org"]
        reset = await console.client.post(
            f"/admin/accounts/{account_id.group(1)}/reset-second-factor", data={"csrf_token": csrf}
        )
        console.secrets["deputy@example.org"] = shown_secret(reset.text)
        await password_step(deputy, "deputy@example.org")
        code_form = await deputy.get("/sign-in/code")
        old_code = pyotp.TOTP(old_secret).at(console.clock())
        stale = await deputy.post("/sign-in/code", data={"csrf_token": csrf_of(code_form.text), "code": old_code})
        await sign_in(console, "deputy@example.org", client=deputy)
        back_in = await deputy.get("/inbox")
        changes = await account_changes(console)
    assert not_theirs.status_code == 400 and "does not give &#39;r-crane&#39; the role" in not_theirs.text
    assert trust_wide.status_code == 403
    assert made.status_code == 200 and "deputy@example.org" in made.text
    assert disabled.status_code == 303
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/sign-in"
    assert refused.status_code == 401
    assert stale.status_code == 401
    assert back_in.status_code == 200
    assert [(c["payload"]["change"], c["actor"]["id"], c["payload"]["person_id"]) for c in changes] == [
        ("created", "headteacher", "r-crane"),
        ("disabled", "headteacher", "r-crane"),
        ("enabled", "headteacher", "r-crane"),
        ("second_factor_reset", "headteacher", "r-crane"),
    ]
    assert not any(console.secrets["deputy@example.org"] in json.dumps(c) for c in changes)
