"""`safeguard user add`: create a console account for a person the school's policy knows."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

user_app = typer.Typer(help="Console accounts.", no_args_is_help=True)


async def _add(*, username: str, password: str, school_id: str, person_id: str, role: str) -> str:
    from services.console.accounts import add_account
    from services.console.store import SCHEMA
    from shared.db import ensure_database, make_engine, session_factory
    from shared.migrations import migrate
    from shared.settings import get_settings

    settings = get_settings()
    await ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine, service="console", schema=SCHEMA)
        async with session_factory(engine)() as session, session.begin():
            made = await add_account(
                session, username=username, password=password, school_id=school_id, person_id=person_id, role=role
            )
    finally:
        await engine.dispose()
    return made.totp_secret


@user_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="What the person types to sign in.")],
    school: Annotated[str, typer.Option(help="The school id, e.g. st-marks.")],
    person: Annotated[str, typer.Option(help="The person's id in the school's policy.")],
    role: Annotated[str, typer.Option(help="Their console role, e.g. designated_safeguarding_lead.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin instead of prompting.")] = False,
) -> None:
    """Create an account; prints the TOTP secret to put in the person's authenticator app (shown once)."""
    from services.console.access import AccountRefused, check_account
    from services.console.passwords import provisioning_uri
    from services.routing.policy.load import PolicyError, load_policy
    from shared.settings import get_settings

    try:
        policy = load_policy(Path(get_settings().policy_dir) / f"{school}.yaml")
        check_account(policy, person_id=person, role=role)
    except (PolicyError, AccountRefused) as refused:
        typer.echo(f"safeguard user add: {refused}", err=True)
        raise typer.Exit(2) from None
    password = input() if password_stdin else getpass.getpass("Password: ")
    if len(password) < 12:
        typer.echo("safeguard user add: the password must be at least 12 characters", err=True)
        raise typer.Exit(2)
    secret = asyncio.run(_add(username=username, password=password, school_id=school, person_id=person, role=role))
    typer.echo(f"Account {username} created for {person} ({role}) at {school}.")
    typer.echo(f"TOTP secret (add it to an authenticator app now; it is not shown again): {secret}")
    typer.echo(provisioning_uri(secret, username=username, issuer="Safeguard"))


@user_app.command("code")
def code(
    data_dir: Annotated[
        Path, typer.Option(envvar="SAFEGUARD_DATA_DIR", help="The data folder `safeguard up` uses.")
    ] = Path(".safeguard-data"),
) -> None:
    """Print the current six-digit code of the DSL account `safeguard up` seeded (a local run only)."""
    from services.launcher.seed import current_code, seed_file

    file = seed_file(data_dir)
    if not file.is_file():
        typer.echo(f"safeguard user code: no seeded account in {data_dir} (start `safeguard up` first)", err=True)
        raise typer.Exit(2)
    typer.echo(current_code(file))
