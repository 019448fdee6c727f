"""The console in a test: its app over httpx's ASGI transport, accounts with known TOTP secrets, seeded cases."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
import sqlalchemy as sa
from nats.js import JetStreamContext

from services.console.accounts import add_account
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.console.store import cases
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import (
    CaseOpened,
    CaseOpenedPayload,
    CaseTriaged,
    CaseTriagedPayloadV2,
    DeadlineRef,
    PersonRef,
    PossibleSubjectRef,
)
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import concern_received
from tests.support.running import publish_raw, running
from tests.support.waiting import eventually

BASE_URL = "https://console.example.org"
PASSWORD = "correct horse battery staple"
ROUTING = Actor(id="routing", role="service")


class SteppingClock:
    """The console's clock: real time to start with, moved on by hand (a TOTP code is good once per step)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Console:
    client: httpx.AsyncClient
    runtime: ServiceRuntime
    settings: Settings
    clock: SteppingClock
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenedCase:
    case_id: str
    reference: str
    school_id: str
    events: list[Any]


@asynccontextmanager
async def console_running(settings: Settings, **options: Any) -> AsyncIterator[Console]:
    """The console app and runtime (migrated, consuming), and a client speaking HTTPS to it."""
    values: dict[str, Any] = {"inbox_poll_seconds": 0.05, "events_stream_seconds": 0.5, "attempts_per_minute": 1000}
    values.update(options)
    clock = SteppingClock()
    app, runtime = create_app(settings, console=ConsoleSettings(**values), clock=clock)
    async with running(runtime):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Console(client, runtime, settings, clock)


async def add_user(console: Console, username: str, *, person: str, role: str, school: str = "st-marks") -> None:
    async with console.runtime.sessions() as session, session.begin():
        made = await add_account(
            session, username=username, password=PASSWORD, school_id=school, person_id=person, role=role
        )
    console.secrets[username] = made.totp_secret


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def password_step(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/sign-in")
    data = {"csrf_token": csrf_of(form.text), "username": username, "password": password}
    return await client.post("/sign-in", data=data)


async def sign_in(console: Console, username: str, *, client: httpx.AsyncClient | None = None) -> httpx.AsyncClient:
    """Sign in with password and the current TOTP code; returns the client, now holding the session cookie."""
    client = client or console.client
    answer = await password_step(client, username)
    assert answer.status_code == 303, answer.text
    form = await client.get("/sign-in/code")
    code = pyotp.TOTP(console.secrets[username]).at(console.clock())
    signed = await client.post("/sign-in/code", data={"csrf_token": csrf_of(form.text), "code": code})
    assert signed.status_code == 303, signed.text
    console.clock.advance(31)
    return client


@asynccontextmanager
async def another_client(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=console.client._transport, base_url=BASE_URL) as client:
        yield client


async def open_case(
    js: JetStreamContext,
    settings: Settings,
    *,
    school_id: str = "st-marks",
    subjects: Sequence[str] = (),
    reporter_person_id: str | None = None,
    summary: str = "Hurtful messages in a class group chat",
    details: str = "Synthetic test concern",
    urgency: str = "high",
    kind: str = "online_bullying",
) -> OpenedCase:
    """Publish a concern and its case's opening events, as intake and routing would."""
    reporter: dict[str, Any] = {"role": "staff", "name": "Test Teacher", "contact": "teacher@example.org"}
    if reporter_person_id:
        reporter["person_id"] = reporter_person_id
    concern = concern_received(school_id=school_id, reporter=reporter, summary=summary, details=details, kind=kind)
    case_id = f"case-{uuid.uuid4().hex[:12]}"
    reference = concern.payload.reference
    common: dict[str, Any] = {"school_id": school_id, "aggregate_id": case_id, "actor": ROUTING}
    opened = CaseOpened.new(
        CaseOpenedPayload(
            case_id=case_id, reference=reference, concern_event_id=str(concern.event_id), kind=kind, policy_version=1
        ),
        occurred_at=utc_now(),
        cause=concern,
        **common,
    )
    triaged = CaseTriaged.new(
        CaseTriagedPayloadV2(
            case_id=case_id,
            reference=reference,
            category=kind,
            urgency=urgency,  # type: ignore[arg-type]
            rule_ids=["bullying-online"],
            policy_version=1,
            notify_roles=["designated_safeguarding_lead"],
            recipients=[PersonRef(person_id="s-bird", name="Mr S Bird", role="designated_safeguarding_lead")],
            parents="dsl_decides",
            deadlines=[DeadlineRef(kind="acknowledge", due_at=utc_now() + timedelta(hours=1))],
            subject_person_ids=list(subjects[:1]),
            possible_subjects=[PossibleSubjectRef(person_id=p, name="Someone", why="named") for p in subjects[1:]],
        ),
        occurred_at=utc_now(),
        cause=opened,
        **common,
    )
    for event in (concern, opened, triaged):
        await publish_raw(js, settings, event)
    return OpenedCase(case_id, reference, school_id, [opened, triaged])


async def projected(console: Console, case_id: str, *, version: int = 2) -> Any:
    """Wait until the console's read model has the case at (at least) this version."""

    async def row() -> Any:
        async with console.runtime.sessions() as session:
            return (await session.execute(sa.select(cases).where(cases.c.case_id == case_id))).one_or_none()

    return await eventually(row, until=lambda r: r is not None and r.version >= version, what=f"case {case_id}")
