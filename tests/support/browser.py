"""Headless Chromium for browser tests: where Debian's chromium is, axe-core's verdict, and overflow at a width."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE: Any = {"width": 360, "height": 740}
DESKTOP: Any = {"width": 1280, "height": 900}
SERIOUS = ("serious", "critical")


def install_axe(folder: Path) -> tuple[str | None, str]:
    """axe-core's script installed from npm into `folder`, or None and why not."""
    npm = shutil.which("npm")
    if npm is None:
        return None, "needs npm to install axe-core"
    done = subprocess.run(
        [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), "axe-core@4"],
        capture_output=True,
        timeout=180,
        check=False,
    )
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if done.returncode != 0 or not script.is_file():
        return None, f"axe-core could not be installed from npm: {done.stderr.decode(errors='replace')[-300:]}"
    return script.read_text(encoding="utf-8"), ""


async def serious_violations(page: Any, axe: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands.

    The script is evaluated through the DevTools protocol, so the page's CSP (no inline script) stays on."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(axe + "\n;true")
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


async def overflow(page: Any) -> int:
    """How many pixels the page is wider than its viewport (0 when nothing overflows sideways)."""
    return int(await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))
