"""The DSL account `safeguard up` makes on its first start, so whoever runs it can sign in to the console at once.

Local runs only (the launcher's own data folder): username `dsl`, the sample school's DSL (`s-bird` of
st-marks), a random password and TOTP secret written once to `<data-dir>/console-dsl.txt` (0600). Nothing is
made when that file exists, when an account `dsl` exists already, or when there is no st-marks policy.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pyotp
import sqlalchemy as sa

from services.console.accounts import add_account
from services.console.passwords import provisioning_uri
from services.console.store import accounts
from services.launcher.secret_files import write_private
from shared.db import make_engine, session_factory

USERNAME = "dsl"
SCHOOL = "st-marks"
PERSON = "s-bird"
ROLE = "designated_safeguarding_lead"
FILE_NAME = "console-dsl.txt"


def seed_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def sign_in_hint(data_dir: Path) -> str:
    """How to sign in as the seeded DSL, for the banner."""
    return f"sign in as {USERNAME}: password in {seed_file(data_dir)}, code from `safeguard user code`"


def totp_secret_in(file: Path) -> str:
    """The TOTP secret the seed file holds."""
    for line in file.read_text(encoding="utf-8").splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "totp secret":
            return value.strip()
    raise ValueError(f"{file} holds no TOTP secret")


def current_code(file: Path) -> str:
    return pyotp.TOTP(totp_secret_in(file)).now()


async def seed_dsl(database_url: str, *, data_dir: Path, policy_dir: Path) -> Path | None:
    """Make the seeded DSL's account once; the file that says how to sign in, or None when none was made."""
    file = seed_file(data_dir)
    if file.exists():
        return file
    if not (policy_dir / f"{SCHOOL}.yaml").is_file():
        return None
    password = secrets.token_urlsafe(18)
    engine = make_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            if await session.scalar(sa.select(accounts.c.account_id).where(accounts.c.username == USERNAME)):
                return None
            made = await add_account(
                session, username=USERNAME, password=password, school_id=SCHOOL, person_id=PERSON, role=ROLE
            )
    finally:
        await engine.dispose()
    uri = provisioning_uri(made.totp_secret, username=USERNAME, issuer="Safeguard")
    lines = [
        f"# The console's seeded DSL ({PERSON} of {SCHOOL}), made by `safeguard up` on its first start.",
        f"username: {USERNAME}",
        f"password: {password}",
        f"totp secret: {made.totp_secret}",
        f"authenticator app: {uri}",
        "# Or print the current six-digit code with: safeguard user code",
    ]
    write_private(file, "\n".join(lines) + "\n")
    return file
