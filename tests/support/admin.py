"""A deployment whose St Mark's policy names a trust administrator, and routing answering policy adoption."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.routing.command_auth import CommandGate
from services.routing.policy_book import PolicyBook
from services.routing.policy_command import register_policy_commands
from services.routing.store import SqlDeadlines
from shared.actor_tokens import ActorVerifier
from shared.contracts.envelope import utc_now
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.running import running
from tests.support.schools import with_second_school

ADMINISTRATOR = "admin-1"
NAMED = f"""  - id: {ADMINISTRATOR}
    name: Trust Administrator
    roles: [trust_administrator]
    contact: {{email: admin@example.org}}
    external: true
  - id: kent-lado
"""


def with_an_administrator(settings: Settings, folder: Path) -> Settings:
    """Two schools (St Mark's and Oak Academy); St Mark's policy names `admin-1` as its trust administrator."""
    chosen = with_second_school(settings, folder)
    st_marks = folder / "st-marks.yaml"
    st_marks.write_text(st_marks.read_text().replace("  - id: kent-lado\n", NAMED, 1))
    return chosen


def raised(text: str, *, to: int, change: tuple[str, str] | None = None) -> str:
    """A policy text at version `to`, with one more change (old, new) if given."""
    text = text.replace("\nversion: 1\n", f"\nversion: {to}\n", 1)
    return text.replace(*change, 1) if change else text


@asynccontextmanager
async def routing_adopting(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    """Routing with its policy book adopted from the folder (published) and answering policy commands."""
    routing = ServiceRuntime(settings, service="routing", schema="routing")
    book = PolicyBook()
    gate = CommandGate(verifier=ActorVerifier.from_folder(settings.actor_keys_dir), policies=book)
    register_policy_commands(routing, gate=gate, book=book, deadlines=SqlDeadlines(), clock=utc_now)
    async with running(routing):
        async with routing.uow.begin() as work:
            adopted = await book.adopt_folder(
                settings.policy_dir, session=work.session, deadlines=SqlDeadlines(), now=utc_now()
            )
            work.emit(adopted)
        yield routing
