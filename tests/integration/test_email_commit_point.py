"""Email's point of no return, cut at exactly the two places that matter, against a real aiosmtpd server.

Killed before the end-of-data terminator: the server discards the message and a re-send arrives once.
Killed after it: the server keeps the message; the attempt was recorded `committing`, so after a restart it
is recorded `sent_unconfirmed` and never sent again. The "kill" is the sending task cancelled at that point
(its connection closes as a killed process's would); the dispatcher's own rows are in real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications import mailbox
from services.notifications.channels import Delivery, SentUnconfirmed
from services.notifications.channels.email import SmtpChannel
from services.notifications.dispatcher import DeliveryRules, Dispatcher
from services.notifications.domain import RenderedNotification
from services.notifications.links import AckLinks
from services.notifications.local_mail import KeepInFolder, ReadsInOrder, serve
from services.notifications.store import SCHEMA, SqlDeliveries, deliveries
from shared.contracts.envelope import utc_now
from shared.contracts.events import PersonRef
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.support.factories import notification_requested
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PERSON = PersonRef(person_id="p-commit", name="Mx Example Commit", role="designated_safeguarding_lead")
TIMEOUT = timedelta(seconds=30)


class GatedFolder(KeepInFolder):
    """Keeps messages, but only once the gate opens: a message can be caught between its terminator and its reply."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.arrived = asyncio.Event()
        self.gate = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.set()
        await self.gate.wait()
        return await super().handle_DATA(server, session, envelope)


def observed_sessions(ended: asyncio.Queue[None]) -> type[ReadsInOrder]:
    class Observed(ReadsInOrder):
        def connection_lost(self, error: Exception | None) -> None:
            super().connection_lost(error)
            ended.put_nowait(None)

    return Observed


def smtp(server: asyncio.Server) -> SmtpChannel:
    port = server.sockets[0].getsockname()[1]
    return SmtpChannel(
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password=None,
        sender="Safeguard <safeguard@example.org>",
        timeout_seconds=10,
    )


def ids_kept(folder: Path) -> list[str]:
    return [str(mailbox.read(kept.path)["Message-ID"]) for kept in mailbox.kept(folder)]


async def test_a_send_cut_off_before_the_terminator_leaves_nothing_at_the_server(tmp_path: Path) -> None:
    ended: asyncio.Queue[None] = asyncio.Queue()
    server = await serve(tmp_path / "mail", session_class=observed_sessions(ended))
    at_commit_point = asyncio.Event()

    async def killed_here(end_of_data: Callable[[], None]) -> None:
        at_commit_point.set()
        await asyncio.Event().wait()  # the process dies here: the terminator is never written

    message = RenderedNotification(title="Safeguarding concern: SG-2026-CUTOFF", body="Sign in.", ack_url="https://x/")
    try:
        sending = asyncio.create_task(
            smtp(server).send(Delivery("n-cut-off", "lead@example.org", message, killed_here))
        )
        await asyncio.wait_for(at_commit_point.wait(), 10)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        await asyncio.wait_for(ended.get(), 10)  # the server has seen the connection end
        assert ids_kept(tmp_path / "mail") == [], "a message without its terminator is discarded"
        await smtp(server).send(Delivery("n-cut-off", "lead@example.org", message))
    finally:
        server.close()
        await server.wait_closed()
    assert ids_kept(tmp_path / "mail") == ["<n-cut-off@safeguard.local>"]


def replies_signalled(replied: asyncio.Event) -> type[ReadsInOrder]:
    class Signals(ReadsInOrder):
        async def push(self, status: Any) -> None:
            await super().push(status)
            if str(status).startswith("250 Message accepted"):
                replied.set()

    return Signals


async def test_the_reply_is_read_even_when_it_comes_while_the_commit_point_still_waits(tmp_path: Path) -> None:
    replied = asyncio.Event()
    server = await serve(tmp_path / "mail", session_class=replies_signalled(replied))

    async def slow_commit(end_of_data: Callable[[], None]) -> None:
        end_of_data()
        await asyncio.wait_for(replied.wait(), 10)  # the server has replied 250 while the COMMIT is still out
        for _ in range(10):
            await asyncio.sleep(0)  # loop turns (not time): the client's socket reads the reply meanwhile

    message = RenderedNotification(title="Safeguarding concern: SG-2026-SLOW", body="Sign in.", ack_url="https://x/")
    channel = smtp(server)
    channel._server["timeout"] = 3  # a lost reply would end in a timeout (SentUnconfirmed), not this id
    try:
        sent = await channel.send(Delivery("n-slow", "lead@example.org", message, slow_commit))
    finally:
        server.close()
        await server.wait_closed()
    assert sent == "<n-slow@safeguard.local>"


class KeepsThenHangsUp(KeepInFolder):
    """Keeps the message, then drops the connection before its 250: the sender cannot know it arrived."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        kept = await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return kept


async def test_no_reply_to_the_terminator_is_sent_unconfirmed_never_an_error_to_retry(tmp_path: Path) -> None:
    server = await serve(tmp_path / "mail", handler=KeepsThenHangsUp(tmp_path / "mail"))
    message = RenderedNotification(title="Safeguarding concern: SG-2026-HANGUP", body="Sign in.", ack_url="https://x/")
    try:
        with pytest.raises(SentUnconfirmed, match="no reply to the end of data"):
            await smtp(server).send(Delivery("n-hang-up", "lead@example.org", message))
    finally:
        server.close()
        await server.wait_closed()
    assert ids_kept(tmp_path / "mail") == ["<n-hang-up@safeguard.local>"]


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


class KilledBeforeCommitting(SqlDeliveries):
    """The process dies as it is about to record `committing`: nothing recorded, terminator never written."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def mark_committing(self, session: AsyncSession, *, notification_id: str, attempt: int) -> bool:
        self.reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def dispatcher(runtime: ServiceRuntime, server: asyncio.Server, clock: Clock, store: SqlDeliveries) -> Dispatcher:
    return Dispatcher(
        uow=runtime.uow,
        deliveries=store,
        channels={"email": smtp(server)},
        signer=AckLinks(b"test-key"),
        console_url="http://127.0.0.1:8081",
        clock=clock,
        rules=DeliveryRules(sending_timeout=TIMEOUT),
    )


async def status(runtime: ServiceRuntime, notification_id: str) -> tuple[str, int]:
    async with runtime.sessions() as session:
        query = sa.select(deliveries.c.status, deliveries.c.attempts)
        found = (await session.execute(query.where(deliveries.c.notification_id == notification_id))).one()
    return found.status, found.attempts


@pytest.mark.parametrize("killed", ["before the terminator", "after the terminator"])
async def test_a_restart_resends_only_what_the_server_cannot_have_kept(
    settings: Settings, tmp_path: Path, killed: str
) -> None:
    runtime, clock, folder = (
        ServiceRuntime(settings, service="notifications", schema=SCHEMA),
        Clock(),
        tmp_path / "mail",
    )
    handler = GatedFolder(folder)
    server = await serve(folder, handler=handler)
    request = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    notification_id = request.payload.notification_id
    expected_id = f"<{notification_id}@safeguard.local>"
    try:
        async with running(runtime, subscribers=False), jetstream(settings) as (_, js):
            async with runtime.uow.begin() as work:
                assert await SqlDeliveries().record_requested(work.session, request, at=clock())
            first = KilledBeforeCommitting() if killed == "before the terminator" else SqlDeliveries()
            sending = asyncio.create_task(dispatcher(runtime, server, clock, first).dispatch_due())
            if isinstance(first, KilledBeforeCommitting):
                await asyncio.wait_for(first.reached.wait(), 10)
                handler.gate.set()
            else:
                await asyncio.wait_for(handler.arrived.wait(), 10)  # the terminator reached the server
                committed = await eventually(
                    lambda: status(runtime, notification_id), until=lambda found: found[0] == "committing"
                )
                assert committed == ("committing", 1), "COMMIT went before the terminator"
            sending.cancel()  # kill -9, at exactly that point
            with pytest.raises(asyncio.CancelledError):
                await sending
            handler.gate.set()
            if killed == "after the terminator":
                await eventually(lambda: _ids(folder), until=lambda ids: ids == [expected_id], what="the kept message")
                assert await status(runtime, notification_id) == ("committing", 1)
            else:
                assert ids_kept(folder) == []
                assert await status(runtime, notification_id) == ("sending", 1)

            clock.now += TIMEOUT + timedelta(seconds=1)  # restarted; the cut-off attempt is reconciled
            assert await dispatcher(runtime, server, clock, SqlDeliveries()).dispatch_due() == 1
            [sent] = await eventually(lambda: stream_events(js, settings, "notification.sent"), what="sent")
            final = await status(runtime, notification_id)
    finally:
        server.close()
        await server.wait_closed()
    assert ids_kept(folder) == [expected_id], "exactly one message at the SMTP server"
    if killed == "before the terminator":
        assert final == ("sent", 2), "re-sent after the restart"
        assert sent.payload.provider_message_id == expected_id
    else:
        assert final == ("sent_unconfirmed", 2), "recorded, never re-sent"
        assert sent.payload.provider_message_id.startswith("unconfirmed")


async def _ids(folder: Path) -> list[str]:
    return ids_kept(folder)


async def test_a_commit_given_one_loop_turn_is_durable_even_if_the_process_dies_at_once(settings: Settings) -> None:
    """The premise of the dispatcher's commit point: after one turn, the COMMIT has left for PostgreSQL."""
    runtime, clock = ServiceRuntime(settings, service="notifications", schema=SCHEMA), Clock()
    request = notification_requested(channel="email", address="lead@example.org", recipient=PERSON)
    notification_id = request.payload.notification_id
    async with running(runtime, subscribers=False):
        async with runtime.uow.begin() as work:
            assert await SqlDeliveries().record_requested(work.session, request, at=clock())
            await work.session.execute(
                sa.update(deliveries)
                .where(deliveries.c.notification_id == notification_id)
                .values(status="sending", attempts=1)
            )
        session = runtime.sessions()
        await session.begin()
        assert await SqlDeliveries().mark_committing(session, notification_id=notification_id, attempt=1)
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        assert driver is not None
        commit = asyncio.ensure_future(session.commit())
        await asyncio.sleep(0)  # what the dispatcher does before writing the terminator
        driver._transport.abort()  # killed here: nothing more leaves this process on that connection
        with contextlib.suppress(Exception):
            await commit
        with contextlib.suppress(Exception):
            await session.close()
        found = await eventually(lambda: status(runtime, notification_id), until=lambda s: s[0] == "committing")
    assert found == ("committing", 1)
