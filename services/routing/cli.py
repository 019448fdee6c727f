"""Routing's commands: `route` (decide concerns read from stdin) and `policy check` (lint a policy file).

Only typer, the standard library and `route_command` are imported here; the policy engine is imported when a
command runs, so the rest of the `safeguard` command line starts quickly.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from services.routing.route_command import INVALID, answer, brief_process


def _fail(message: str, *, code: int) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=code)


def route(
    policy: Annotated[Path, typer.Option("--policy", help="The school's policy file (YAML).")],
) -> None:
    """Decide who must act on concerns read from stdin (JSON, or JSON Lines); print one decision per line."""
    code = answer(policy)  # the same door `safeguard route` goes through without typer
    if code:
        raise typer.Exit(code=code)


def check(
    file: Annotated[Path, typer.Argument(help="The policy file to check (YAML).")],
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when there are warnings.")] = False,
) -> None:
    """Validate a policy file, list its rules, and warn about anything that looks wrong."""
    from services.routing.policy.check import check_report
    from services.routing.policy.load import PolicyError, read_policy_text

    try:
        text = read_policy_text(file)
    except PolicyError as error:
        _fail(f"invalid policy: {error}", code=INVALID)
    # The command line is the edge, so reading today's date here is fine; the engine never does.
    report = check_report(text, source=str(file), today=date.today())
    if report.refused:
        _fail("\n".join(report.lines), code=INVALID)
    for line in report.lines:
        typer.echo(line)
    if strict and report.warnings:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add `route` and the `policy` group (`policy check`) to a typer app."""
    app.command("route")(route)
    policy_app = typer.Typer(help="Work with a school's policy file.", no_args_is_help=True)
    policy_app.command("check")(check)
    app.add_typer(policy_app, name="policy")


def run_command_line(app: typer.Typer) -> None:
    """Run `app` as this process's command line, with the garbage collector set for a quick start and exit."""
    with brief_process():
        app()


def main() -> None:
    """Run the routing commands on their own: `python -m services.routing.cli route --policy FILE`."""
    app = typer.Typer(help="Safeguard routing commands.", no_args_is_help=True, add_completion=False)
    register(app)
    run_command_line(app)


if __name__ == "__main__":
    main()
