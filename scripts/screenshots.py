"""Screenshots of the console's main pages at phone (360 px) and desktop widths, into docs/screenshots/.

`make screenshots` (or `python scripts/screenshots.py`): starts `safeguard up` in a temporary data folder (its
own NATS and PostgreSQL unless SAFEGUARD_NATS_URL / SAFEGUARD_DATABASE_URL name servers), reports a few
synthetic concerns, signs in as the DSL it seeds (password and TOTP from the seed file), works one case a
little, looks at the admin and device pages, then signs in as an auditor it adds (as `safeguard user add` would)
for the record as it stood; it drives Debian's chromium with Playwright (never a downloaded browser).
Everything is stopped and the folder removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.launcher.ports import free_port  # noqa: E402
from services.launcher.seed import seed_file, totp_secret_in  # noqa: E402

WIDTHS: dict[str, Any] = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 800}}
CONCERNS = [
    {
        "kind": "grooming_or_exploitation",
        "summary": "A learner says an adult online asked to meet them tonight",
        "immediate_risk": "yes",
        "people": [{"role": "learner", "involvement": "victim", "name": "Learner A", "age": 12}],
    },
    {
        "kind": "online_bullying",
        "summary": "Hurtful messages about a learner in a class group chat",
        "immediate_risk": "no",
        "people": [{"role": "learner", "involvement": "victim", "name": "Learner B", "age": 13}],
    },
    {
        "kind": "sexual_images",
        "summary": "An image of a learner is being shared between phones",
        "immediate_risk": "not_sure",
        "people": [{"role": "learner", "involvement": "victim", "name": "Learner C", "age": 14}],
    },
]
REPORTER = {"role": "staff", "name": "A Teacher", "contact": "teacher@example.org"}
AUDITOR_PASSWORD = "screenshots-only-" + os.urandom(8).hex()
READY = re.compile(r"^\s+console:\s+(\S+) ")
INTAKE = re.compile(r"^\s+intake API:\s+(\S+)/api/v1/")


class Up:
    """`safeguard up` in its own data folder, read line by line until its banner names the console."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.data_dir = data_dir
        self.postgres_port = free_port()
        ports = ["--http-port", str(free_port()), "--notifications-port", str(free_port())]
        ports += ["--postgres-port", str(self.postgres_port)]
        command = [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir), *ports]
        with log.open("ab") as errors:
            self.process = subprocess.Popen(
                [*command, "--console-port", str(free_port())],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def urls(self, *, timeout: float = 180.0) -> tuple[str, str]:
        """The console's and intake's base URLs, once everything is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            console = [m.group(1) for line in list(self.lines) if (m := READY.match(line))]
            intake = [m.group(1) for line in list(self.lines) if (m := INTAKE.match(line))]
            if console and intake:
                return console[0], intake[0]
            time.sleep(0.2)
        raise SystemExit(f"safeguard up did not come up (exit {self.process.poll()})")

    def database_url(self) -> str:
        """The application database: the one named by SAFEGUARD_DATABASE_URL, or the embedded server's."""
        if os.environ.get("SAFEGUARD_DATABASE_URL"):
            return os.environ["SAFEGUARD_DATABASE_URL"]
        password = (self.data_dir / "postgres" / "superuser.password").read_text().strip()
        return f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{self.postgres_port}/safeguard"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def eventually(check: Any, *, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise SystemExit(f"gave up waiting for {what}")


async def report_concerns(intake: str) -> list[str]:
    """Report the synthetic concerns; their references."""
    references = []
    async with httpx.AsyncClient(timeout=15) as client:
        for concern in CONCERNS:
            answer = await client.post(
                f"{intake}/api/v1/schools/st-marks/concerns", json={"reporter": REPORTER, **concern}
            )
            answer.raise_for_status()
            references.append(answer.json()["reference"])
    return references


async def shoot(page: Any, out: Path, name: str) -> None:
    """The page as it stands, at both widths (the whole page, not just the first screen)."""
    for width, viewport in WIDTHS.items():
        await page.set_viewport_size(viewport)
        await page.evaluate("document.fonts.ready")
        await page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=True)
        print(f"saved {name}-{width}.png")


async def add_auditor(database_url: str) -> tuple[str, str]:
    """An auditor's account at St Mark's, as `safeguard user add` makes one: its username and TOTP secret."""
    from services.console.accounts import add_account
    from shared.db import make_engine, session_factory

    engine = make_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            made = await add_account(
                session,
                username="auditor",
                password=AUDITOR_PASSWORD,
                school_id="st-marks",
                person_id="auditor-1",
                role="auditor",
            )
    finally:
        await engine.dispose()
    return "auditor", made.totp_secret


def seeded(seed: Path) -> tuple[str, str]:
    """The seeded DSL's password and TOTP secret."""
    password = next(line.split(": ", 1)[1] for line in seed.read_text().splitlines() if line.startswith("password:"))
    return password, totp_secret_in(seed)


async def sign_in(page: Any, console: str, *, password: str, secret: str, username: str = "dsl") -> None:
    await page.goto(f"{console}/sign-in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Six-digit code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{console}/inbox")


async def as_auditor(browser: Any, console: str, reference: str, auditor: tuple[str, str], out: Path) -> None:
    """The record as it stood (now), once audit's ledger has the worked case, and that case's chronology."""
    page = await (await browser.new_context(viewport=WIDTHS["desktop"])).new_page()
    await sign_in(page, console, password=AUDITOR_PASSWORD, secret=auditor[1], username=auditor[0])

    async def worked_case_in_the_record() -> bool:
        await page.goto(f"{console}/audit/cases?school=st-marks")
        row = page.locator("table.replay tr", has_text=reference)
        return await row.count() == 1 and "in progress" in await row.inner_text()

    await eventually(worked_case_in_the_record, what="the worked case in audit's record")
    await shoot(page, out, "audit")
    await page.get_by_role("link", name=reference).click()
    await page.locator(".chronology").get_by_text("case.action_recorded").wait_for()
    await shoot(page, out, "audit-case")


async def take(
    console: str, intake: str, account: tuple[str, str], auditor: tuple[str, str], out: Path, chromium: str
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await (await browser.new_context(viewport=WIDTHS["desktop"])).new_page()
            await page.goto(f"{console}/sign-in")
            await shoot(page, out, "sign-in")
            await sign_in(page, console, password=account[0], secret=account[1])
            references = await report_concerns(intake)

            async def all_listed() -> bool:
                await page.reload()
                text = await page.locator("#cases").inner_text()
                return all(reference in text for reference in references)

            await eventually(all_listed, what="the concerns in the inbox")
            # The least urgent is worked a little, so the case page has a chronology and the inbox a mix.
            await page.locator("#cases li", has_text=references[1]).get_by_role("button", name="Acknowledge").click()
            await page.wait_for_url(re.compile(r"/cases/"))
            action = page.locator("form", has=page.get_by_role("heading", name="Record an action"))
            await action.get_by_label("Action").select_option("spoke_to_learner")
            await action.get_by_label("Details").fill("Spoke to the learner with a colleague present")
            await action.get_by_role("button", name="Record an action").click()
            await page.locator(".chronology").get_by_text("case.action_recorded").wait_for()
            await shoot(page, out, "case")
            await page.goto(f"{console}/inbox")
            await shoot(page, out, "inbox")
            await page.goto(f"{console}/overview")
            await shoot(page, out, "overview")
            await page.goto(f"{console}/report")
            await shoot(page, out, "report")
            await page.goto(f"{console}/admin/schools/st-marks")
            await shoot(page, out, "admin")
            await page.goto(f"{console}/me/device")
            await page.locator("#push-state").wait_for()
            await shoot(page, out, "device")
            await as_auditor(browser, console, references[1], auditor, out)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    arguments = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    arguments.out.mkdir(parents=True, exist_ok=True)
    # Under the system temp folder: the embedded PostgreSQL's own user must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="safeguard-screenshots-"))
    up = Up(folder / "data", folder / "up.log")
    try:
        console, intake = up.urls()
        account = seeded(seed_file(folder / "data"))
        auditor = asyncio.run(add_auditor(up.database_url()))
        asyncio.run(take(console, intake, account, auditor, arguments.out, chromium))
    except BaseException:
        print((folder / "up.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        up.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
