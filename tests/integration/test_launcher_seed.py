"""`safeguard up`'s seeded DSL: made once, its password and TOTP secret in a private file, and it signs in."""

from __future__ import annotations

import stat
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.launcher import banner
from services.launcher.seed import USERNAME, seed_dsl, totp_secret_in
from shared.settings import Settings
from tests.support.console import add_user, console_running, csrf_of

pytestmark = pytest.mark.integration


async def test_the_seeded_dsl_is_made_once_and_signs_in_with_the_file_s_password_and_code(
    settings: Settings, tmp_path: Path
) -> None:
    policies = Path(settings.policy_dir)
    async with console_running(settings) as console:  # migrated, as the console is before the launcher seeds
        file = await seed_dsl(settings.database_url, data_dir=tmp_path, policy_dir=policies)
        assert file is not None and stat.S_IMODE(file.stat().st_mode) == 0o600
        text = file.read_text()
        again = await seed_dsl(settings.database_url, data_dir=tmp_path, policy_dir=policies)
        assert again == file and file.read_text() == text, "made once"
        password = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("password:"))
        form = await console.client.get("/sign-in")
        data = {"csrf_token": csrf_of(form.text), "username": USERNAME, "password": password}
        assert (await console.client.post("/sign-in", data=data)).status_code == 303
        form = await console.client.get("/sign-in/code")
        code = pyotp.TOTP(totp_secret_in(file)).at(console.clock())
        signed = await console.client.post("/sign-in/code", data={"csrf_token": csrf_of(form.text), "code": code})
        assert signed.status_code == 303
        assert (await console.client.get("/inbox")).status_code == 200
        # An account `dsl` already there (here the first seed's) is left alone, and nothing is written.
        await add_user(console, "someone", person="s-bird", role="designated_safeguarding_lead")
        elsewhere = tmp_path / "other"
        elsewhere.mkdir()
        assert await seed_dsl(settings.database_url, data_dir=elsewhere, policy_dir=policies) is None
        assert not (elsewhere / file.name).exists()
    printed = CliRunner().invoke(app, ["user", "code", "--data-dir", str(tmp_path)])
    assert printed.exit_code == 0 and printed.output.strip().isdigit() and len(printed.output.strip()) == 6
    assert CliRunner().invoke(app, ["user", "code", "--data-dir", str(elsewhere)]).exit_code == 2


def test_the_banner_says_how_to_sign_in_as_the_seeded_dsl(tmp_path: Path) -> None:
    from services.launcher.seed import sign_in_hint

    endpoints = banner.Endpoints(
        intake_base="http://127.0.0.1:8080",
        notifications_base="http://127.0.0.1:8081",
        nats_url="nats://127.0.0.1:4222",
        database_url="postgresql+asyncpg://127.0.0.1/safeguard",
        console_base="http://127.0.0.1:8082",
        console_sign_in=sign_in_hint(tmp_path),
    )
    [line] = [line for line in banner.format_banner(endpoints).splitlines() if "console:" in line]
    assert "http://127.0.0.1:8082" in line and "sign in as dsl" in line
    assert str(tmp_path / "console-dsl.txt") in line and "safeguard user code" in line
