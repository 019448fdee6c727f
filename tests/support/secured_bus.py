"""A nats-server secured as `safeguard up` secures it, and clients connecting as each identity.

Tests of who may say what (tests/integration/test_nats_permissions.py, and the consumer-edge tests) use the
`bus` fixture of tests/conftest.py: a private server with the rendered users, the streams declared by admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from services.launcher.embedded_nats import EmbeddedNats
from services.launcher.nats_auth import NatsAuth
from shared.identities import ADMIN, inbox_prefix
from shared.settings import Settings
from shared.subjects import Subjects
from tests.support.waiting import eventually


@dataclass
class Bus:
    """A private nats-server started from the rendered config, and a way to connect as each identity."""

    server: EmbeddedNats
    auth: NatsAuth
    settings: Settings
    subjects: Subjects
    clients: list[Client] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)  # per identity, as nats-py reports them

    async def connect(self, name: str) -> Client:
        """A connected nats-py client using identity `name`'s generated password, as a service would."""
        seen = self.errors.setdefault(name, [])

        async def remember(error: Exception) -> None:
            seen.append(str(error).lower())

        client = await nats.connect(
            self.server.url,
            user=name,
            password=self.auth.password(name),
            inbox_prefix=inbox_prefix(name),
            error_cb=remember,
            allow_reconnect=False,
            connect_timeout=2,
        )
        self.clients.append(client)
        return client

    async def violations(self, name: str, *, containing: str) -> list[str]:
        """The permission violations the server reported to `name` that mention `containing`."""
        return await eventually(
            lambda: _matching(self.errors.get(name, []), containing),
            what=f"a permissions violation for {name} on {containing}",
            timeout=5.0,
        )

    async def stored_subjects(self) -> set[str]:
        """The subjects of every event stored on the stream (read as admin)."""
        admin = await self.connect(ADMIN)
        info = await admin.jetstream().stream_info(self.subjects.stream, subjects_filter=">")
        return set((info.state.subjects or {}).keys())

    async def close(self) -> None:
        """Close every client this bus opened."""
        for client in self.clients:
            if not client.is_closed:
                await client.close()


async def _matching(errors: list[str], containing: str) -> list[str]:
    # nats-py lower-cases the server's message.
    return [error for error in errors if "permissions violation" in error and containing.lower() in error]
