"""`safeguard mail list` and `safeguard mail show` over a folder of kept emails."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from services.notifications.channels import Delivery, EmailFileSink
from services.notifications.domain import RenderedNotification

LINK = "http://127.0.0.1:8081/api/v1/notifications/n-{n}/ack?token=" + "f" * 40


async def test_the_mail_command_lists_kept_mail_and_shows_one_with_its_link_whole(tmp_path: Path) -> None:
    sink = EmailFileSink(str(tmp_path))
    for n in (1, 2):
        message = RenderedNotification(title=f"Safeguarding concern: SG-{n}", body="Sign in.", ack_url=LINK.format(n=n))
        await sink.send(Delivery(f"n-{n}", f"staff{n}@example.org", message))
    runner = CliRunner()

    listed = runner.invoke(app, ["mail", "list", "--folder", str(tmp_path)])
    shown = runner.invoke(app, ["mail", "show", "1", "--folder", str(tmp_path)])
    missing = runner.invoke(app, ["mail", "show", "9", "--folder", str(tmp_path)])
    empty = runner.invoke(app, ["mail", "list", "--folder", str(tmp_path / "none")])

    assert listed.exit_code == 0 and "staff1@example.org" in listed.stdout and "SG-2" in listed.stdout
    assert shown.exit_code == 0 and "Subject: Safeguarding concern: SG-1" in shown.stdout
    assert f"Link: {LINK.format(n=1)}" in shown.stdout
    assert missing.exit_code == 2
    assert empty.exit_code == 0 and "No mail" in empty.stdout
