"""The report form in headless Chromium on a 360 px screen, checked by axe-core: filled, sent, then its status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from services.intake.app import create_app
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.browser import CHROMIUM, PHONE, serious_violations
from tests.support.intake import free_port
from tests.support.running import jetstream, stream_events
from tests.support.waiting import eventually

pytest.importorskip("playwright", reason="needs the playwright package (dev extra)")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"),
]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
async def intake_url(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, Settings]]:
    """The intake service served over HTTP on a loopback port, as a browser reaches it."""
    chosen = settings.model_copy(
        update={
            "policy_dir": str(REPO_ROOT / "deploy" / "policies"),
            "intake_attachments_dir": str(tmp_path / "attachments"),
        }
    )
    app, _ = create_app(chosen)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, result=server.started), what="intake to listen")
    try:
        yield f"http://127.0.0.1:{port}", chosen
    finally:
        server.should_exit = True
        await serving


async def test_a_parent_reports_on_a_phone_with_a_screenshot_and_reads_the_reference(
    intake_url: tuple[str, Settings], axe_script: str
) -> None:
    from playwright.async_api import FilePayload, async_playwright

    url, settings = intake_url
    async with async_playwright() as playwright, jetstream(settings) as (_, js):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport=PHONE)
            await page.goto(f"{url}/report")
            await page.get_by_role("link", name="St Mark's CEP School").click()
            assert await serious_violations(page, axe_script) == []
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            await page.get_by_role("group", name="Who are you?").get_by_label("A parent or carer").check()
            await page.get_by_label("Your name (optional)").fill("A Parent")
            about = page.get_by_role("group", name="Who is this about")
            await about.get_by_label("An adult who works at the school").check()
            await page.get_by_label("If it is about an adult who works at the school, who?").select_option(
                "pastoral-lead"
            )
            await page.get_by_label("What is the concern about?").select_option("staff_social_media_misuse")
            risk = page.get_by_role("group", name="Is a child at immediate risk of harm?")
            await risk.get_by_label("Not sure").check()
            await page.get_by_label("In one sentence, what happened?").fill("A staff account messaged my child")
            await page.get_by_label("Screenshots or files (optional)").set_input_files(
                [FilePayload(name="screenshot.png", mimeType="image/png", buffer=PNG)]
            )
            await page.get_by_role("button", name="Send the report").focus()  # sent from the keyboard
            await page.keyboard.press("Enter")

            await page.wait_for_selector("#reference")
            reference = (await page.locator("#reference").inner_text()).strip()
            secret = (await page.locator("#secret").inner_text()).strip()
            assert reference.startswith("SG-") and secret
            assert await serious_violations(page, axe_script) == []

            await page.get_by_role("link", name="status page").click()
            await page.get_by_label("Reference").fill(reference)
            await page.get_by_label("Secret").fill(secret)
            await page.get_by_role("button", name="Check").click()
            assert (await page.locator("#stage").inner_text()).startswith("Received")
            assert await serious_violations(page, axe_script) == []
        finally:
            await browser.close()
        [event] = await eventually(
            lambda: stream_events(js, settings, "concern.received"), until=lambda e: len(e) == 1, what="concern"
        )
    assert event.payload.reference == reference
    assert event.payload.people[0].person_id == "pastoral-lead" and event.payload.immediate_risk == "not_sure"
    assert "image/png" in json.dumps(event.payload.answers)
