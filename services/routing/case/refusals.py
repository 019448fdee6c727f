"""How the case workflow says no: the reason in the school's words, and a word for the record."""

from __future__ import annotations

from services.routing.case.roles import spoken
from shared.contracts.envelope import Actor


class CommandRejected(Exception):
    """The case as it stands does not allow the command; `reason` says why in the school's words."""

    def __init__(self, reason: str, *, code: str = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class StaleCommand(CommandRejected):
    """The asker saw an older version of the case than the one it is at now."""


def must_be(actor: Actor, allowed: frozenset[str], *, to: str) -> None:
    """CommandRejected unless the actor acts in one of the `allowed` roles."""
    if actor.role not in allowed:
        raise CommandRejected(f"only {spoken(allowed)} may {to}; you are {actor.role}", code="not_allowed")
