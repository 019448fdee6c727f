"""`safeguard route`: decide concerns read from stdin under a policy file, without importing typer.

The console script answers `safeguard route` here before the rest of the command line is loaded; the typer
command of the same name (listed by `safeguard --help`) calls the same `route`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from services.routing.policy.calendar import BankHolidays
    from shared.contracts.concern import ConcernReceivedPayload

INVALID = 2  # an invalid policy file or concern


class RouteFailed(Exception):
    """`route` cannot go on: the message for stderr and the exit code."""

    def __init__(self, message: str, *, code: int = INVALID) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str, *, code: int = INVALID) -> NoReturn:
    raise RouteFailed(message, code=code)


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


def route(policy: Path, *, text: str, out: TextIO, alerts: TextIO | None = None) -> None:
    """Decide each concern in `text` (JSON, or JSON Lines) under `policy`; write one decision per line."""
    from services.routing.policy.decide import decide
    from services.routing.policy.load import PolicyError
    from services.routing.policy_cache import load_policy_remembered

    alerts = alerts or sys.stderr
    bank_holidays, remember = _remembered_bank_holidays()
    try:
        loaded = load_policy_remembered(policy, cache_dir=_cache_dir(), bank_holidays=bank_holidays)
    except PolicyError as error:
        _fail(f"invalid policy: {error}")
    try:
        for concern in _concerns(text):
            decision = decide(concern, loaded)
            out.write(json.dumps(decision.summary(), ensure_ascii=False) + "\n")
            # Alerts carry references only, never names: they go where an operator looks.
            for alert in decision.alerts:
                print(alert, file=alerts)
    finally:
        out.flush()
        remember()


@contextmanager
def brief_process() -> Iterator[None]:
    """Garbage-collector settings for a command that starts, does one thing and exits."""
    # Starting up creates some forty thousand objects that live until exit (typer, pydantic, the policy engine's
    # models) and little garbage, yet at the default thresholds the cyclic collector runs about eighty times to
    # free a few hundred; mypy raises its thresholds to these values for the same reason. At exit, everything
    # still alive is frozen so that the interpreter's final collections skip it (the operating system reclaims
    # the memory anyway): that alone takes about 45 ms off each `route`.
    gc.set_threshold(200_000, 30, 30)
    try:
        yield
    finally:
        gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """`safeguard route --policy FILE`, answered without loading typer: start-up is part of its time budget."""
    parser = argparse.ArgumentParser(
        prog="safeguard route",
        description="Decide who must act on concerns read from stdin (JSON, or JSON Lines); "
        "print one decision per line.",
    )
    parser.add_argument("--policy", required=True, type=Path, help="The school's policy file (YAML).")
    arguments = parser.parse_args(argv)
    with brief_process():
        try:
            route(arguments.policy, text=sys.stdin.read(), out=sys.stdout)
        except RouteFailed as failed:
            print(failed, file=sys.stderr)
            return failed.code
    return 0
