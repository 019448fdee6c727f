"""The staff console in headless Chromium with the whole system running (every service its own process, real
NATS and PostgreSQL): a DSL signs in with a TOTP code, an urgent concern appears without a reload, and the case
is worked to its debrief; axe-core on the main pages at 360 px and desktop; offline sends kept and sent once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.launcher.ports import free_port
from tests.conftest import make_settings
from tests.e2e.conftest import WITH_CONSOLE, System, started_system
from tests.support.browser import CHROMIUM, PHONE
from tests.support.console_browser import (
    WAIT_MS,
    a_second_from_now,
    account,
    auditor_replays_verifies_and_exports,
    checked_at_both_widths,
    fake_push_manager,
    form_headed,
    new_browser,
    passed,
    recorded,
    said_on,
    sign_in,
    subscriptions_of,
    this_device_gets_alerts,
    watch_for_blocked_scripts,
)
from tests.support.factories import report_json
from tests.support.running import jetstream, stream_events
from tests.support.waiting import eventually
from tests.support.webpush import local_push_service

pytest.importorskip("playwright", reason="needs the playwright package (dev extra)")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"),
]
URGENT = {
    "summary": "A learner says an adult online asked to meet them tonight",
    "immediate_risk": "yes",
    "kind": "grooming_or_exploitation",
}
OUTBOX = """
  const db = await new Promise((ok) => {
    const opening = indexedDB.open("safeguard-outbox");
    opening.onsuccess = () => ok(opening.result);
  });
  const read = (store, act) => new Promise((ok) => {
    const asked = act(db.transaction(store).objectStore(store));
    asked.onsuccess = () => ok(asked.result);
  });
  const items = await read("items", (store) => store.getAll());
"""
# What IndexedDB holds: the items' bytes as text, and the key's own flags.
AT_REST = (
    "async () => {"
    + OUTBOX
    + """
  const key = await read("keys", (store) => store.get("outbox-key"));
  db.close();
  const text = items.map((item) => new TextDecoder("latin1").decode(item.data)).join("");
  return {text, extractable: key.extractable, algorithm: key.algorithm.name};
}"""
)
# Every kept item stored a second time, as if the device sent it again.
EACH_TWICE = (
    "async () => {"
    + OUTBOX
    + """
  await new Promise((ok) => {
    const adding = db.transaction("items", "readwrite");
    items.forEach((item) => adding.objectStore("items").add(item));
    adding.oncomplete = ok;
  });
  db.close();
}"""
)


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    """Every service, the console included, as its own process; stopped and its database dropped after."""
    settings = make_settings(
        f"browser_{tmp_path.name[-10:]}",
        intake_http_port=free_port(),
        notifications_http_port=free_port(),
        mail_sink_dir=str(tmp_path / "mail"),
        actor_keys_dir=str(tmp_path / "actor-keys"),
    )
    # Signed heads every second, so an auditor can export (and prove) the record the test just made.
    fast_heads = {"SAFEGUARD_AUDIT_CHECKPOINT_SECONDS": "1"}
    async with started_system(settings, tmp_path, services=WITH_CONSOLE, extra_env=fast_heads) as running:
        yield running


async def the_admin_pages(page: Any, base: str, axe: str) -> None:
    """The DSL looks after their school: the schools, the school's people and accounts, a policy change checked."""
    await page.goto(f"{base}/admin")
    await checked_at_both_widths(page, axe)
    await page.goto(f"{base}/admin/schools/st-marks")
    await page.get_by_role("heading", name="People and roles (from the policy)").wait_for()
    await checked_at_both_widths(page, axe)
    school_quiet = page.locator("form", has=page.get_by_label("Quiet from", exact=True))
    await school_quiet.get_by_label("Quiet from", exact=True).fill("21:00")
    await school_quiet.get_by_label("until", exact=True).fill("07:00")
    await school_quiet.get_by_role("button").click()
    await page.get_by_role("heading", name="A new policy version for st-marks").wait_for(timeout=WAIT_MS)
    await checked_at_both_widths(page, axe)


async def the_break_glass_page(browser: Any, system: System, axe: str, *, reference: str, case_url: str) -> None:
    """The named governor opens an ordinary case: outside their need to know, they are asked why (not shown it)."""
    secret = await account(system, "governor@example.org", person="d-hill", role="named_governor")
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await sign_in(page, system.console_url, "governor@example.org", secret=secret)
    await page.goto(case_url)
    await page.get_by_role("heading", name="This case is outside your need to know").wait_for()
    assert reference not in await page.locator("main").inner_text()
    await checked_at_both_widths(page, axe)
    await context.close()


async def test_a_dsl_signs_in_and_works_an_urgent_concern_from_inbox_to_debrief(
    system: System, axe_script: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    base = system.console_url
    secret = await account(system, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
    blocked: list[str] = []
    async with async_playwright() as playwright, local_push_service() as pushes:
        browser = await new_browser(playwright)
        device = pushes.new_browser()
        try:
            context = await browser.new_context(viewport=PHONE, permissions=["notifications"])
            await context.add_init_script(fake_push_manager(device))
            page = await context.new_page()
            watch_for_blocked_scripts(page, blocked)
            await page.goto(f"{base}/sign-in")
            await checked_at_both_widths(page, axe_script)
            await sign_in(page, base, "dsl@example.org", secret=secret)
            await checked_at_both_widths(page, axe_script)
            # This phone gets the DSL's alerts (its service worker shows them).
            await this_device_gets_alerts(page, system, axe_script, browser=device)
            await page.goto(f"{base}/inbox")

            # Posted to intake while the inbox is open: it appears without a reload (server-sent events).
            await page.evaluate("window.stayedOpen = true")
            async with httpx.AsyncClient(timeout=10) as client:
                posted = await client.post(
                    f"{system.intake_url}/api/v1/schools/st-marks/concerns", json=report_json(**URGENT)
                )
            assert posted.status_code == 202, posted.text
            reference = posted.json()["reference"]
            item = page.locator("#cases li", has_text=reference)
            await item.wait_for(timeout=WAIT_MS)
            assert await page.evaluate("window.stayedOpen === true"), "the inbox was not reloaded"
            assert "urgency-immediate" in (await item.get_attribute("class") or "")
            # ... and the alert reached this phone's push service, encrypted for it, with nothing of the concern.
            [alert] = await eventually(
                lambda: asyncio.sleep(0, result=[r for r in pushes.received if reference in r.payload["title"]]),
                timeout=30,
                what="the push alert for the urgent concern",
            )
            assert "meet" not in json.dumps(alert.payload) and "Learner" not in json.dumps(alert.payload)

            await item.get_by_role("button", name="Acknowledge").click()  # one tap
            await page.wait_for_url(re.compile(r"/cases/"))
            await recorded(page, "case.acknowledged")
            assert "acknowledged by s-bird" in await page.locator("main").inner_text()
            case_url = page.url
            await checked_at_both_widths(page, axe_script)
            # The moment the auditor replays: after the acknowledgement, before everything that follows.
            moment = a_second_from_now()
            await passed(moment)

            action = form_headed(page, "Record an action")
            await action.get_by_label("Action").select_option("spoke_to_learner")
            await action.get_by_label("Details").fill("Spoke to the learner with a colleague present")
            await action.get_by_role("button", name="Record an action").click()
            await recorded(page, "case.action_recorded")

            decision = form_headed(page, "Record a decision")
            await decision.get_by_label("Kind").select_option("not_refer")
            await decision.get_by_label("Decision").fill("No referral to children's social care")
            await decision.get_by_label("Reasons").fill("Parents engaged; the account was blocked and reported")
            await decision.get_by_role("button", name="Record a decision").click()
            await recorded(page, "case.decision_recorded")

            outcome = form_headed(page, "Record the outcome")
            await outcome.get_by_label("Outcome").fill("resolved_in_school")
            await outcome.get_by_label("Summary").fill("Safety plan agreed with the learner and parents")
            await outcome.get_by_role("button", name="Record the outcome").click()
            await recorded(page, "case.outcome_recorded")

            investigation = form_headed(page, "Complete the investigation")
            await investigation.get_by_label("Summary").fill("Facts established; no further enquiry")
            await investigation.get_by_role("button", name="Complete the investigation").click()
            await recorded(page, "case.investigation_completed")

            closing = form_headed(page, "Close the case")
            await closing.get_by_label("Summary").fill("Closed with a safety plan in place")
            await closing.get_by_role("button", name="Close the case").click()
            await recorded(page, "case.closed")
            assert "Status: closed" in await page.locator("main").inner_text()

            debrief = form_headed(page, "Record the debrief")
            await debrief.get_by_label("Lessons learnt").fill("Teach learners how to report contact from strangers")
            await debrief.get_by_label("Changes to the policy, one a line").fill("Name the online safety lead")
            await debrief.get_by_role("button", name="Record the debrief").click()
            await recorded(page, "case.debrief_recorded")
            await checked_at_both_widths(page, axe_script)

            # As an auditor, on another device: the case as it stood at the moment, verified and exported.
            await auditor_replays_verifies_and_exports(
                browser, system, axe_script, reference=reference, moment=moment, folder=tmp_path
            )
            await the_break_glass_page(browser, system, axe_script, reference=reference, case_url=case_url)

            await page.goto(f"{base}/overview")
            await page.get_by_role("heading", name="Overview").wait_for()
            await checked_at_both_widths(page, axe_script)
            await page.goto(f"{base}/report")
            await checked_at_both_widths(page, axe_script)
            await the_admin_pages(page, base, axe_script)
            # Handing the phone on: its alerts stop.
            await page.goto(f"{base}/me/device")
            await page.get_by_role("button", name="Stop alerts on this device").click()
            await said_on(page, "This device gets no alerts.")
            assert await subscriptions_of(system, "s-bird") == []
        finally:
            await browser.close()
    assert blocked == []
    async with jetstream(system.settings) as (_, js):
        debriefs = await stream_events(js, system.settings, "case.debrief_recorded")
        changes = await stream_events(js, system.settings, "account.changed")
    assert [event.payload.lessons_learnt for event in debriefs] == [
        "Teach learners how to report contact from strangers"
    ]
    assert [change.change for change in debriefs[0].payload.policy_changes] == ["Name the online safety lead"]
    assert [(c.payload.change, c.actor.id) for c in changes] == [
        ("push_subscribed", "s-bird"),
        ("push_unsubscribed", "s-bird"),
    ]


async def outbox_notices(*pages: Any) -> list[str]:
    return [await page.locator("#outbox").inner_text() for page in pages]


async def kept_items(page: Any) -> int:
    return int(await page.evaluate("SafeguardQueue.count()"))


async def test_offline_an_acknowledgement_and_a_report_are_kept_encrypted_and_arrive_once_back_online(
    system: System,
) -> None:
    from playwright.async_api import async_playwright

    base = system.console_url
    secret = await account(system, "dsl@example.org", person="s-bird", role="designated_safeguarding_lead")
    async with httpx.AsyncClient(timeout=10) as client:
        posted = await client.post(f"{system.intake_url}/api/v1/schools/st-marks/concerns", json=report_json())
    reference = posted.json()["reference"]
    async with async_playwright() as playwright:
        browser = await new_browser(playwright)
        try:
            context = await browser.new_context(viewport=PHONE)
            inbox = await context.new_page()
            await sign_in(inbox, base, "dsl@example.org", secret=secret)
            item = inbox.locator("#cases li", has_text=reference)
            await item.wait_for(timeout=WAIT_MS)
            report = await context.new_page()
            await report.goto(f"{base}/report")

            await context.set_offline(True)
            await item.get_by_role("button", name="Acknowledge").click()
            await inbox.get_by_text("kept on this device").wait_for()
            await report.get_by_label("What is the concern about?").select_option("online_bullying")
            await report.get_by_role("radio", name="Not sure").check()
            await report.get_by_label("In one sentence, what happened?").fill("Sent from a phone with no signal")
            await report.get_by_role("button", name="Send the report").click()
            await report.get_by_text("kept on this device").wait_for()
            assert await kept_items(report) == 2
            # Only ciphertext at rest: the items store holds no word of the report.
            stored = await report.evaluate(AT_REST)
            assert "no signal" not in stored["text"] and "acknowledge" not in stored["text"]
            assert stored["extractable"] is False and stored["algorithm"] == "AES-GCM"
            # Each kept item twice, as if the device sent it again (a retried sync): still one of each arrives.
            await report.evaluate(EACH_TWICE)
            assert await kept_items(report) == 4

            await context.set_offline(False)
            await eventually(lambda: kept_items(report), until=lambda left: left == 0, timeout=30, what="sent")
            # Whichever page sent them (one at a time, under a Web Lock) tells the person so.
            told = await eventually(
                lambda: outbox_notices(inbox, report),
                until=lambda said: any("Sent what this device kept" in text for text in said),
                timeout=30,
                what="the notice that the kept items were sent",
            )
            assert not any("still waiting" in text for text in told), told
        finally:
            await browser.close()

    async def arrived() -> tuple[list[Any], list[Any]]:
        async with jetstream(system.settings) as (_, js):
            acknowledged = await stream_events(js, system.settings, "case.acknowledged")
            concerns = await stream_events(js, system.settings, "concern.received")
        return acknowledged, [c for c in concerns if c.payload.summary == "Sent from a phone with no signal"]

    acknowledged, reported = await eventually(
        arrived, until=lambda found: len(found[0]) >= 1 and len(found[1]) >= 1, timeout=30, what="both sends"
    )
    assert [event.payload.acknowledged_by for event in acknowledged] == ["s-bird"]
    assert len(reported) == 1
    assert reported[0].payload.reporter.person_id == "s-bird"
    # The records the replies were given from, written before each answer: one of each however often sent.
    connection = await asyncpg.connect(system.dsn)
    try:
        acknowledgements = await connection.fetchval(
            "select count(*) from routing.case_events where event_type = 'case.acknowledged'"
        )
        inputs = await connection.fetchval(
            "select count(*) from intake.raw_inputs where idempotency_key like 'console-%'"
        )
    finally:
        await connection.close()
    assert (acknowledgements, inputs) == (1, 1)
