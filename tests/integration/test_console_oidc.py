"""OpenID Connect sign-in against a fake provider on a loopback port: accepted once every check passes.

Wrong nonce, wrong audience, an expired token, a bad signature, an unknown or foreign email, a person with no
account and a replayed state are each refused with the sign-in page saying why, and no session.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pyotp
import pytest

from shared.settings import Settings
from tests.support.console import BASE_URL, Console, add_user, another_client, console_running, csrf_of
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, fake_provider

pytestmark = pytest.mark.integration


def oidc_file(folder: Path, provider: FakeProvider) -> str:
    """Two providers for the same school: one whose sign-in still needs TOTP, one that enforces MFA itself."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "client-secret").write_text(CLIENT_SECRET + "\n")
    common = (
        f"    trust: st-marks\n    discovery_url: {provider.url}/.well-known/openid-configuration\n"
        f"    client_id: {CLIENT_ID}\n    client_secret_file: {folder / 'client-secret'}\n"
        "    allowed_email_domains: [st-marks.example.org]\n"
    )
    text = (
        "providers:\n"
        f"  - id: school\n    label: Microsoft 365\n{common}"
        f"  - id: school-mfa\n    label: Microsoft 365 (MFA)\n{common}    idp_enforces_mfa: true\n"
    )
    (folder / "oidc.yaml").write_text(text)
    return str(folder / "oidc.yaml")


BROWSER_COOKIE = "__Host-sg_oidc"


async def through_provider(
    client: httpx.AsyncClient, *, provider_id: str = "school"
) -> tuple[httpx.Response, str, str]:
    """Start at the console, let the provider sign in, and bring its answer back.

    Returns the console's answer, the callback URL and the browser cookie the sign-in was tied to.
    """
    start = await client.get(f"/sign-in/oidc/{provider_id}")
    assert start.status_code == 303, start.text
    browser = client.cookies.get(BROWSER_COOKIE) or ""
    async with httpx.AsyncClient() as browser_at_provider:
        signed = await browser_at_provider.get(start.headers["location"])
    callback = signed.headers["location"]
    assert callback.startswith(f"{BASE_URL}/sign-in/oidc-callback?")
    return await client.get(callback.removeprefix(BASE_URL)), callback, browser


async def has_session(client: httpx.AsyncClient) -> bool:
    return (await client.get("/inbox")).status_code == 200


async def refused_without_session(console: Console, *, why: str, saying: str) -> None:
    async with another_client(console) as client:
        answer, *_ = await through_provider(client)
        assert answer.status_code == 401, (why, answer.status_code)
        assert saying in answer.text, (why, re.findall(r'role="alert">([^<]*)<', answer.text))
        assert "Sign-in through your school&#39;s account was refused" in answer.text, why
        assert not any("sg_session" in header for header in answer.headers.get_list("set-cookie")), why
        assert not await has_session(client), why


async def test_sign_in_through_the_provider_then_the_code_or_straight_in_when_it_enforces_mfa(
    settings: Settings, tmp_path: Path
) -> None:
    async with fake_provider() as provider:
        options = {"oidc_file": oidc_file(tmp_path / "oidc", provider), "public_url": BASE_URL}
        async with console_running(settings, **options) as console, another_client(console) as second:
            await add_user(console, "s.bird@st-marks.example.org", person="s-bird", role="designated_safeguarding_lead")
            offered = await console.client.get("/sign-in")
            answer, *_ = await through_provider(console.client)
            before_code = await has_session(console.client)
            form = await console.client.get("/sign-in/code")
            code = pyotp.TOTP(console.secrets["s.bird@st-marks.example.org"]).at(console.clock())
            entered = await console.client.post("/sign-in/code", data={"csrf_token": csrf_of(form.text), "code": code})
            after_code = await has_session(console.client)
            straight, *_ = await through_provider(second, provider_id="school-mfa")
            straight_in = await has_session(second)
    assert 'href="/sign-in/oidc/school">Sign in with Microsoft 365<' in offered.text
    assert answer.status_code == 200 and 'content="0;url=/sign-in/code"' in answer.text
    assert not before_code and entered.status_code == 303 and after_code
    assert straight.status_code == 200 and 'content="0;url=/"' in straight.text and straight_in


async def test_every_failed_check_is_refused_with_a_page_and_no_session(settings: Settings, tmp_path: Path) -> None:
    async with fake_provider() as provider:
        options = {"oidc_file": oidc_file(tmp_path / "oidc", provider), "public_url": BASE_URL}
        async with console_running(settings, **options) as console:
            await add_user(console, "s.bird@st-marks.example.org", person="s-bird", role="designated_safeguarding_lead")
            for fault, saying in (
                ("wrong_nonce", "nonce"),
                ("wrong_audience", "aud"),
                ("expired", "exp"),
                ("bad_signature", "signature does not verify"),
            ):
                provider.faults = {fault}
                await refused_without_session(console, why=fault, saying=saying)
            provider.faults = set()
            for email, saying in (
                ("nobody@st-marks.example.org", "no one with this email address is named"),
                ("s.bird@elsewhere.example.com", "addresses at elsewhere.example.com may not sign in"),
                ("r.crane@st-marks.example.org", "you have no console account"),
            ):
                provider.email = email
                await refused_without_session(console, why=email, saying=saying)
            provider.email = "s.bird@st-marks.example.org"
            async with another_client(console) as client:
                first, callback, browser = await through_provider(client)
                async with another_client(console) as replaying:
                    # The same browser (its cookie) bringing the same answer back a second time.
                    replaying.cookies.set(BROWSER_COOKIE, browser, domain="console.example.org")
                    replayed = await replaying.get(callback.removeprefix(BASE_URL))
                    replaying_has_session = await has_session(replaying)
    assert first.status_code == 200 and browser
    assert replayed.status_code == 401 and "expired or was already used" in replayed.text
    assert not replaying_has_session
