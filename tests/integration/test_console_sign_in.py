"""Console sign-in against real PostgreSQL + NATS: password then TOTP, lock-out, CSRF, fixation, headers, XSS."""

from __future__ import annotations

import pyotp
import pytest

from shared.settings import Settings
from tests.support.console import (
    add_user,
    another_client,
    console_running,
    csrf_of,
    open_case,
    password_step,
    projected,
    sign_in,
)
from tests.support.running import jetstream

pytestmark = pytest.mark.integration

DSL = {"person": "s-bird", "role": "designated_safeguarding_lead"}


async def test_a_dsl_signs_in_with_password_and_code_and_reaches_the_inbox(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        before = await console.client.get("/inbox")
        await sign_in(console, "dsl@example.org")
        inbox = await console.client.get("/inbox")
    assert before.status_code == 303 and before.headers["location"] == "/sign-in"
    assert inbox.status_code == 200
    assert "Inbox" in inbox.text


async def test_the_password_alone_does_not_sign_anyone_in(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        answer = await password_step(console.client, "dsl@example.org")
        inbox = await console.client.get("/inbox")
        code_form = await console.client.get("/sign-in/code")
        wrong = await console.client.post(
            "/sign-in/code", data={"csrf_token": csrf_of(code_form.text), "code": "000000"}
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in/code"
    assert inbox.status_code == 303
    assert wrong.status_code == 401


async def test_a_used_code_cannot_be_used_again(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        code = pyotp.TOTP(console.secrets["dsl@example.org"]).at(console.clock())
        outcomes = []
        for _ in range(2):
            async with another_client(console) as client:
                await password_step(client, "dsl@example.org")
                form = await client.get("/sign-in/code")
                answer = await client.post("/sign-in/code", data={"csrf_token": csrf_of(form.text), "code": code})
                outcomes.append(answer.status_code)
    assert outcomes == [303, 401]


async def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        wrong = [(await password_step(console.client, "dsl@example.org", "wrong")).status_code for _ in range(5)]
        right_but_locked = await password_step(console.client, "dsl@example.org")
        console.clock.advance(16 * 60)
        later = await password_step(console.client, "dsl@example.org")
    assert wrong == [401] * 5
    assert right_but_locked.status_code == 401
    assert later.status_code == 303


async def test_a_client_making_too_many_attempts_is_slowed_down(settings: Settings) -> None:
    async with console_running(settings, attempts_per_minute=3) as console:
        answers = [(await password_step(console.client, "nobody@example.org", "x")).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


async def test_every_form_needs_its_csrf_token(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        await console.client.get("/sign-in")
        no_token = await console.client.post("/sign-in", data={"username": "dsl@example.org", "password": "x"})
        await sign_in(console, "dsl@example.org")
        forged = await console.client.post("/sign-out", data={"csrf_token": "forged"})
        still_in = await console.client.get("/inbox")
    assert no_token.status_code == 403
    assert forged.status_code == 403
    assert still_in.status_code == 200


async def test_a_planted_session_id_is_never_the_one_signed_in(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        console.client.cookies.set("__Host-sg_session", "planted-by-an-attacker", domain="console.example.org")
        await password_step(console.client, "dsl@example.org")
        half_way = console.client.cookies.get("__Host-sg_session")
        await sign_in(console, "dsl@example.org")
        signed_in_as = console.client.cookies.get("__Host-sg_session")
        async with another_client(console) as attacker:
            attacker.cookies.set("__Host-sg_session", str(half_way), domain="console.example.org")
            with_half_way_id = await attacker.get("/inbox")
            attacker.cookies.set("__Host-sg_session", "planted-by-an-attacker", domain="console.example.org")
            with_planted_id = await attacker.get("/inbox")
    assert signed_in_as not in (None, "planted-by-an-attacker", half_way)
    assert with_half_way_id.status_code == 303
    assert with_planted_id.status_code == 303


async def test_signing_out_everywhere_ends_every_session(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        async with another_client(console) as phone, another_client(console) as laptop:
            await sign_in(console, "dsl@example.org", client=phone)
            await sign_in(console, "dsl@example.org", client=laptop)
            inbox = await phone.get("/inbox")
            ended = await phone.post("/sign-out-everywhere", data={"csrf_token": csrf_of(inbox.text)})
            phone_after = await phone.get("/inbox")
            laptop_after = await laptop.get("/inbox")
    assert ended.status_code == 303
    assert (phone_after.status_code, laptop_after.status_code) == (303, 303)


async def test_cookies_are_secure_httponly_strict_and_every_answer_has_the_security_headers(settings: Settings) -> None:
    async with console_running(settings) as console:
        await add_user(console, "dsl@example.org", **DSL)
        answer = await password_step(console.client, "dsl@example.org")
        sign_in_page = await console.client.get("/sign-in")
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "__host-" in cookie
    headers = sign_in_page.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert "<script>" not in sign_in_page.text.replace('<script src="/static/console.js" defer></script>', "")


async def test_concern_text_with_script_is_shown_as_text(settings: Settings) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    async with console_running(settings) as console, jetstream(settings) as (_, js):
        await add_user(console, "dsl@example.org", **DSL)
        case = await open_case(js, settings, summary=attack, details=attack)
        await projected(console, case.case_id)
        await sign_in(console, "dsl@example.org")
        page = await console.client.get(f"/cases/{case.case_id}")
    assert page.status_code == 200
    assert attack not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
