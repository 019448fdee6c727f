"""Steps of the console's browser tests: accounts, sign-in, the checks every page gets, and the auditor's and a
device's steps (the whole system runs as processes; Playwright drives Debian's chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyotp
from cryptography.hazmat.primitives import serialization

from services.console.accounts import add_account
from shared.db import make_engine, session_factory
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import System
from tests.support.browser import CHROMIUM, DESKTOP, PHONE, overflow, serious_violations
from tests.support.console import PASSWORD
from tests.support.waiting import eventually
from tests.support.webpush import SubscribedBrowser

WAIT_MS = 30_000


async def account(system: System, username: str, *, person: str, role: str) -> str:
    """A console account made as `safeguard user add` makes one; returns its TOTP secret."""
    engine = make_engine(system.settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            made = await add_account(
                session, username=username, password=PASSWORD, school_id="st-marks", person_id=person, role=role
            )
    finally:
        await engine.dispose()
    return made.totp_secret


async def sign_in(page: Any, base: str, username: str, *, secret: str, landing: str = "/inbox") -> None:
    await page.goto(f"{base}/sign-in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Six-digit code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}{landing}")


async def checked_at_both_widths(page: Any, axe: str) -> None:
    """No serious axe-core violation at 360 px or on a desktop, and nothing wider than a phone's screen."""
    for viewport in (DESKTOP, PHONE):
        await page.set_viewport_size(viewport)
        violations = await serious_violations(page, axe)
        assert violations == [], (page.url, viewport["width"], violations)
    assert await overflow(page) == 0, f"{page.url} is wider than 360 px"


def form_headed(page: Any, heading: str) -> Any:
    return page.locator("form", has=page.get_by_role("heading", name=heading))


async def recorded(page: Any, event_type: str) -> None:
    """The case page (opened after the command) lists the event in its chronology."""
    await page.locator(".chronology").get_by_text(event_type, exact=True).first.wait_for(timeout=WAIT_MS)


async def new_browser(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def watch_for_blocked_scripts(page: Any, blocked: list[str]) -> None:
    """Collect what the page's CSP refused: none of the console's own script or style may need an exception."""

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text:
            blocked.append(message.text)

    page.on("console", seen)


def a_second_from_now() -> datetime:
    """The next whole second (UTC): what a `datetime-local` field with seconds can name exactly."""
    now = datetime.now(UTC)
    return now.replace(microsecond=0) + timedelta(seconds=1)


async def passed(moment: datetime) -> None:
    """Wait until the clock is past `moment`, so whatever happens next happened after it."""

    async def now_after() -> bool:
        return datetime.now(UTC) > moment

    await eventually(now_after, timeout=5, what="the moment to pass")


def verified_by_the_standalone_verifier(bundle: Path, system: System) -> str:
    """`python -m services.audit.verify_export` on the bundle, with the audit public key taken from its signing key."""
    signing = Path(system.env["SAFEGUARD_AUDIT_SIGNING_KEY_PATH"])
    key = serialization.load_pem_private_key(signing.read_bytes(), password=None)
    public = bundle.with_name("audit-public.pem")
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.audit.verify_export", str(bundle), "--public-key", str(public)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def auditor_replays_verifies_and_exports(
    browser: Any, system: System, axe: str, *, reference: str, moment: datetime, folder: Path
) -> None:
    """An auditor signs in, sees the case as it stood at `moment` (acknowledged, not yet closed), its chronology
    then, verifies the record from the page, and downloads an export bundle the standalone verifier accepts."""
    base = system.console_url
    secret = await account(system, "auditor@example.org", person="auditor-1", role="auditor")
    context = await browser.new_context(viewport=PHONE, accept_downloads=True)
    page = await context.new_page()
    await sign_in(page, base, "auditor@example.org", secret=secret)
    await page.goto(f"{base}/audit")
    await checked_at_both_widths(page, axe)
    await page.get_by_label("School").select_option("st-marks")
    await page.get_by_label("As of (UTC)").fill(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    await page.get_by_role("button", name="Show the cases").click()
    row = page.locator("table.replay tr", has_text=reference)
    await row.wait_for(timeout=WAIT_MS)
    then = await row.inner_text()
    assert "in progress" in then and "s-bird" in then and "closed" not in then, then  # acknowledged by s-bird
    await checked_at_both_widths(page, axe)
    cases_page = page.url

    await row.get_by_role("link", name=reference).click()
    await page.get_by_role("heading", name=f"Case {reference} as of").wait_for(timeout=WAIT_MS)
    chronology = await page.locator(".chronology").inner_text()
    assert "case.acknowledged" in chronology and "case.closed" not in chronology, chronology
    assert "case.debrief_recorded" not in chronology
    await checked_at_both_widths(page, axe)

    await page.goto(cases_page)
    await page.get_by_role("button", name="Verify st-marks's record").click()
    await page.get_by_text("Verified: all").wait_for(timeout=WAIT_MS)
    await checked_at_both_widths(page, axe)

    await page.goto(cases_page)
    async with page.expect_download(timeout=WAIT_MS) as downloading:
        await page.get_by_role("link", name="Download an export bundle").click()
    download = await downloading.value
    assert download.suggested_filename.startswith("audit-st-marks-record-")
    bundle = folder / download.suggested_filename
    await download.save_as(bundle)
    said = verified_by_the_standalone_verifier(bundle, system)
    assert said.startswith("OK st-marks"), said
    assert reference in bundle.read_text()
    await context.close()


# Stands in for the browser's push service registration (headless Chromium has none): a subscription with keys
# the test holds, so what notifications sends it can be decrypted. Injected before the page's own scripts.
FAKE_PUSH_MANAGER = """
(() => {
  const made = %s;
  // Kept across page loads, as the browser keeps a real subscription.
  const kept = () => localStorage.getItem("fake-push") === "subscribed";
  const subscription = () => ({
    endpoint: made.endpoint,
    toJSON: () => made,
    unsubscribe: async () => { localStorage.removeItem("fake-push"); return true; },
  });
  PushManager.prototype.getSubscription = async function () { return kept() ? subscription() : null; };
  PushManager.prototype.subscribe = async function (options) {
    window.subscribedWithKeyBytes = new Uint8Array(options.applicationServerKey).length;
    localStorage.setItem("fake-push", "subscribed");
    return subscription();
  };
})();
"""


async def subscriptions_of(system: System, person_id: str) -> list[str]:
    connection = await asyncpg.connect(system.dsn)
    try:
        rows = await connection.fetch(
            "select endpoint from notifications.push_subscriptions where person_id = $1", person_id
        )
    finally:
        await connection.close()
    return [row["endpoint"] for row in rows]


async def this_device_gets_alerts(page: Any, system: System, axe: str, *, browser: SubscribedBrowser) -> None:
    """On /me/device: the browser subscribes and notifications holds it for the person."""
    await page.goto(f"{system.console_url}/me/device")
    await page.get_by_role("heading", name="This device").wait_for()
    await checked_at_both_widths(page, axe)
    await page.get_by_role("button", name="Get alerts on this device").click()
    await said_on(page, "This device gets alerts.")
    assert await page.evaluate("window.subscribedWithKeyBytes") == 65  # an uncompressed P-256 point: the VAPID key
    assert await subscriptions_of(system, "s-bird") == [browser.endpoint]
    await page.get_by_role("button", name="Stop alerts on this device").wait_for()
    await checked_at_both_widths(page, axe)


async def said_on(page: Any, words: str) -> None:
    """The device page's status line says `words` (the wait fails showing what it said instead)."""

    async def state() -> str:
        return str(await page.locator("#push-state").inner_text())

    await eventually(state, until=lambda said: said == words, timeout=30, what=f"the page to say {words!r}")


def fake_push_manager(browser: SubscribedBrowser) -> str:
    return FAKE_PUSH_MANAGER % json.dumps(browser.subscription_json())
