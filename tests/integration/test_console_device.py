"""What the device's offline queue relies on: a fresh CSRF token per session, and CSRF still required on a replay."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from tests.support.console import add_user, another_client, console_running, csrf_of, open_case, projected, sign_in
from tests.support.running import jetstream

pytestmark = pytest.mark.integration

JSON = {"Accept": "application/json"}


async def test_a_replayed_send_needs_the_session_s_token_and_a_script_is_answered_401_not_redirected(
    settings: Settings,
) -> None:
    async with console_running(settings) as console, jetstream(settings) as (_, js):
        case = await open_case(js, settings)
        await projected(console, case.case_id)
        await add_user(console, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
        async with another_client(console) as stranger:
            assert (await stranger.get("/session/csrf", headers=JSON)).status_code == 401
            asked = await stranger.post(
                f"/cases/{case.case_id}/commands", data={"command": "acknowledge"}, headers=JSON
            )
            assert asked.status_code == 401
        await sign_in(console, "dsl@example.org")
        session = (await console.client.get("/session/csrf", headers=JSON)).json()
        assert session["csrf_token"] == csrf_of((await console.client.get("/inbox")).text)
        url = f"/cases/{case.case_id}/commands"
        without = await console.client.post(url, data={"command": "acknowledge"}, headers=JSON)
        wrong = await console.client.post(url, data={"command": "acknowledge"}, headers={**JSON, "X-CSRF-Token": "x"})
        keyless = await console.client.post(
            "/report", data={"summary": "x"}, headers={**JSON, "X-CSRF-Token": session["csrf_token"]}
        )
        # Sign-out ends the token with the session: a queued send waits for the next sign-in's token.
        await console.client.post("/sign-out", data={"csrf_token": session["csrf_token"]})
        after = await console.client.post(
            url, data={"command": "acknowledge"}, headers={**JSON, "X-CSRF-Token": session["csrf_token"]}
        )
    assert (without.status_code, wrong.status_code) == (403, 403)
    assert keyless.status_code == 400
    assert after.status_code == 401
    assert without.headers["cache-control"] == "no-store"
