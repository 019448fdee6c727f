"""The bench's push devices: a Web Push service stand-in on loopback HTTPS, and one subscribed device per person.

A school's staff have the installable web app with push allowed, so a push alert reaches a device. Without a
device every push fails, notifications reports notification.failed and routing's fallback works out the next
step (another channel, or waiting when the others were asked at the same time): work a school does not see.
The stand-in runs in the bench's own process (its CPU counts as the bench's), behind a certificate signed by a
CA made for this run only; the notifications process is told to trust that CA through `SSL_CERT_FILE`, which
the default TLS context (OpenSSL's default verify paths) reads when the process starts.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.bench.loopback import LoopbackCertificates, loopback_site
from services.routing.policy.load import load_policy


@dataclass
class PushStandIn:
    """Takes every push message with 201 and a Location, as a push service does, and counts what came."""

    origin: str = ""
    pushes: int = 0
    body_bytes: int = 0
    peers: set[tuple[Any, ...]] = field(default_factory=set)

    @property
    def connections(self) -> int:
        """Distinct client connections seen (each its own source port while it is open)."""
        return len(self.peers)

    def endpoint(self, device: str) -> str:
        return f"{self.origin}/push/{device}"

    async def _push(self, request: web.Request) -> web.Response:
        self.body_bytes += len(await request.read())
        self.pushes += 1
        if request.transport is not None:
            self.peers.add(tuple(request.transport.get_extra_info("peername") or ()))
        return web.Response(status=201, headers={"Location": f"{self.origin}/message/{self.pushes}"})

    def counts(self) -> dict[str, int]:
        return {"pushes_received": self.pushes, "push_connections": self.connections}


@asynccontextmanager
async def push_stand_in(certificates: LoopbackCertificates) -> AsyncIterator[PushStandIn]:
    """Serve a PushStandIn over HTTPS on 127.0.0.1 at a port the system picks, in this event loop."""
    stand_in = PushStandIn()
    app = web.Application()
    app.router.add_post("/push/{device}", stand_in._push)
    async with loopback_site(app, ssl_context=certificates.server_context()) as origin:
        stand_in.origin = origin
        yield stand_in


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_device_keys() -> tuple[str, str]:
    """What a browser's PushManager makes: a P-256 public key (uncompressed point) and a 16-byte auth secret."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64url(point), _b64url(secrets.token_bytes(16))


def push_capable_people(policy_file: Path) -> list[str]:
    """The school's own people whose policy entry says they take push alerts (the DSL among them)."""
    policy = load_policy(policy_file)
    return [person.id for person in policy.people if person.contact.push and not person.external]


SUBSCRIBE_SQL = """
insert into notifications.push_subscriptions (endpoint, person_id, p256dh, auth, created_at)
select endpoint, person_id, p256dh, auth, now()
from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as device(endpoint, person_id, p256dh, auth)
"""


async def subscribe_devices(connection: asyncpg.Connection, stand_in: PushStandIn, people: Iterable[str]) -> int:
    """One device per person, subscribed at the stand-in, as the web app's subscribe call would keep it."""
    rows = [(stand_in.endpoint(f"{person}-{secrets.token_hex(8)}"), person, *new_device_keys()) for person in people]
    if not rows:
        return 0
    await connection.execute(SUBSCRIBE_SQL, *(list(column) for column in zip(*rows, strict=True)))
    return len(rows)


DELIVERIES_SQL = "select channel, status, count(*) as n from notifications.deliveries group by channel, status"
PATHS = {
    True: "a push device for every push-capable person: each push is sent, to the loopback push service",
    False: "no push device: each push fails (no subscription) and routing's fallback handles notification.failed",
}


async def path_report(connection: asyncpg.Connection, stand_in: PushStandIn | None, *, devices: int) -> dict[str, Any]:
    """Which notification path the run measured, and what shows it: deliveries by channel, pushes received."""
    deliveries = {f"{row['channel']} {row['status']}": row["n"] for row in await connection.fetch(DELIVERIES_SQL)}
    counts = stand_in.counts() if stand_in is not None else {"pushes_received": None, "push_connections": None}
    return {
        "push_device": stand_in is not None,
        "measured": PATHS[stand_in is not None],
        "devices": devices,
        **counts,
        "deliveries": dict(sorted(deliveries.items())),
    }
