"""Routing answering case commands in a test, as the console and the operator CLI send them."""

from __future__ import annotations

from services.routing.case_command_edge import register_commands
from services.routing.command_auth import CommandGate
from services.routing.policy_book import PolicyBook
from shared.actor_tokens import ActorVerifier
from shared.contracts.envelope import utc_now
from shared.runtime import ServiceRuntime
from shared.settings import Settings


def routing_answering_commands(settings: Settings) -> tuple[ServiceRuntime, PolicyBook]:
    """Routing's runtime answering case commands (start it with `running`), and its policy book to adopt into."""
    routing = ServiceRuntime(settings, service="routing", schema="routing")
    book = PolicyBook()
    # Routing checks the console's signed assertions with the console's public key, and roles in the policy.
    gate = CommandGate(verifier=ActorVerifier.from_folder(settings.actor_keys_dir), policies=book)
    register_commands(routing, clock=utc_now, gate=gate)
    return routing, book
