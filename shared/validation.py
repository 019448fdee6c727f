"""Pydantic's validation errors in words a person can act on: each problem led by where it is.

Used wherever a ValidationError becomes text or a field list: intake's 422, the routing command refusal, a
policy file's problems, a dead-lettered event's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (`people[0].age`), what pydantic says, and its error type."""

    location: tuple[str | int, ...]
    message: str
    type: str

    @property
    def field(self) -> str:
        return field_path(self.location)


def field_path(location: Sequence[str | int]) -> str:
    """`("rules", 3, "then")` as `rules[3].then`: list positions in brackets, keys joined by dots."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def problems(error: ValidationError, *, limit: int | None = None) -> list[Problem]:
    """The error's problems in order (the first `limit` of them), messages without pydantic's prefixes."""
    return [
        Problem(
            location=tuple(problem["loc"]),
            message=problem["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "),
            type=problem["type"],
        )
        for problem in error.errors()[:limit]
    ]


def describe(error: ValidationError, *, limit: int | None = None, separator: str = "; ", whole: str = "") -> str:
    """The problems as `field: message`, joined by `separator`; a problem with the whole document is `whole`'s."""
    return separator.join(f"{problem.field or whole}: {problem.message}" for problem in problems(error, limit=limit))
