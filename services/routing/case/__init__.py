"""The case aggregate: state folded from events, commands staff send, and the rules that decide them."""

from services.routing.case.commands import CaseCommand, parse_command
from services.routing.case.decide import CommandRejected, StaleCommand, decide
from services.routing.case.state import CaseState, apply, fold

__all__ = ["CaseCommand", "CaseState", "CommandRejected", "StaleCommand", "apply", "decide", "fold", "parse_command"]
