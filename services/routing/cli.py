"""Routing's commands: `route` (decide concerns read from stdin) and `policy check` (lint a policy file).

Only typer and the standard library are imported here; the policy engine is imported when a command runs,
so the rest of the `safeguard` command line starts quickly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from services.routing.policy.calendar import BankHolidays
    from shared.contracts.concern import ConcernReceivedPayload

INVALID = 2  # an invalid policy file or concern
UNROUTABLE = 1  # a valid concern nobody can safely be told about


def _fail(message: str, *, code: int = INVALID) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=code)


def _documents(text: str) -> list[tuple[int, Any]]:
    """One JSON document (even spread over lines), or one per non-blank line (JSON Lines)."""
    stripped = text.strip()
    if not stripped:
        _fail("no concern on stdin: give one concern as JSON, or many as JSON Lines")
    try:
        return [(1, json.loads(stripped))]
    except json.JSONDecodeError:
        pass
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            _fail(f"line {number}: not JSON ({error.msg} at column {error.colno})")
    return documents


def _concerns(text: str) -> list[ConcernReceivedPayload]:
    from pydantic import ValidationError

    from services.routing.policy.load import describe_validation_error
    from shared.contracts.concern import ConcernReceivedPayload

    concerns = []
    for number, document in _documents(text):
        if not isinstance(document, dict):
            _fail(f"line {number}: a concern is a JSON object, not {type(document).__name__}")
        try:
            concerns.append(ConcernReceivedPayload.model_validate(document))
        except ValidationError as error:
            _fail(f"line {number}: not a valid concern:\n{describe_validation_error(error)}")
    return concerns


def _cache_dir() -> Path:
    own = os.environ.get("SAFEGUARD_CACHE_DIR")
    if own:
        return Path(own)
    shared_cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(shared_cache) if shared_cache else Path.home() / ".cache") / "safeguard"


def _remembered_bank_holidays() -> tuple[BankHolidays, Callable[[], None]]:
    """Bank holidays kept in a small file between runs, and a function that saves any newly worked out.

    Importing the holidays package takes longer than deciding a whole batch of concerns, so a one-shot
    command remembers the dates it has needed. The file is keyed by the package's version, so an update
    (a new one-off bank holiday, say) is picked up.
    """
    from importlib.metadata import PackageNotFoundError, version

    from services.routing.policy.calendar import england_and_wales_bank_holidays

    path = _cache_dir() / "bank-holidays-england-and-wales.json"
    try:
        package = version("holidays")
    except PackageNotFoundError:
        package = "unknown"
    known: dict[int, frozenset[date]] = {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("holidays_version") == package:
            known = {int(y): frozenset(map(date.fromisoformat, days)) for y, days in saved["years"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        known = {}
    worked_out: list[int] = []

    def bank_holidays(year: int) -> frozenset[date]:
        days = known.get(year)
        if days is None:
            days = known[year] = england_and_wales_bank_holidays(year)
            worked_out.append(year)
        return days

    def save() -> None:
        if not worked_out:
            return
        years = {str(y): sorted(d.isoformat() for d in days) for y, days in sorted(known.items())}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps({"holidays_version": package, "years": years}), encoding="utf-8")
            partial.replace(path)
        except OSError:
            pass  # a cache that cannot be written only costs time on the next run

    return bank_holidays, save


def route(
    policy: Annotated[Path, typer.Option("--policy", help="The school's policy file (YAML).")],
) -> None:
    """Decide who must act on concerns read from stdin (JSON, or JSON Lines); print one decision per line."""
    from services.routing.policy.decide import decide
    from services.routing.policy.floor import NoEligibleRecipientError
    from services.routing.policy.load import PolicyError, load_policy

    bank_holidays, remember = _remembered_bank_holidays()
    try:
        loaded = load_policy(policy, bank_holidays=bank_holidays)
    except PolicyError as error:
        _fail(f"invalid policy: {error}")
    out = sys.stdout
    try:
        for concern in _concerns(sys.stdin.read()):
            try:
                decision = decide(concern, loaded)
            except NoEligibleRecipientError as error:
                _fail(f"cannot route: {error}", code=UNROUTABLE)
            out.write(json.dumps(decision.summary(), ensure_ascii=False) + "\n")
    finally:
        out.flush()
        remember()


def check(
    file: Annotated[Path, typer.Argument(help="The policy file to check (YAML).")],
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when there are warnings.")] = False,
) -> None:
    """Validate a policy file, list its rules, and warn about anything that looks wrong."""
    from services.routing.policy.check import check_policy, describe_rule
    from services.routing.policy.load import PolicyError, load_policy

    try:
        loaded = load_policy(file)
    except PolicyError as error:
        _fail(f"invalid policy: {error}")
    # The command line is the edge, so reading today's date here is fine; the engine never does.
    findings = check_policy(loaded, today=date.today())
    school = loaded.school
    typer.echo(f"{file}: valid policy for {school.name} ({school.id}), version {loaded.version}")
    typer.echo(f"digest {loaded.digest}")
    typer.echo(f"{len(loaded.people)} people, {len(loaded.kinds)} kinds of concern, {len(loaded.rules)} rules:")
    for rule in loaded.rules:
        typer.echo(f"  {rule.id} (section {rule.section}): {rule.title}")
        typer.echo(f"      {describe_rule(rule)}")
    for finding in findings:
        typer.echo(f"warning: {finding}")
    typer.echo(f"{len(findings)} warning{'s' if len(findings) != 1 else ''}")
    if strict and findings:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add `route` and the `policy` group (`policy check`) to a typer app."""
    app.command("route")(route)
    policy_app = typer.Typer(help="Work with a school's policy file.", no_args_is_help=True)
    policy_app.command("check")(check)
    app.add_typer(policy_app, name="policy")


def main() -> None:
    """Run the routing commands on their own: `python -m services.routing.cli route --policy FILE`."""
    app = typer.Typer(help="Safeguard routing commands.", no_args_is_help=True, add_completion=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
