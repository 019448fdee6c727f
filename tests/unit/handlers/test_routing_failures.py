"""Routing's notification.failed batch handler over fakes: a batch ends where the same failures one at a time end."""

from __future__ import annotations

from datetime import UTC, datetime

from services.routing.failures import on_notifications_failed
from services.routing.handlers import Routing, on_concerns_received
from services.routing.policy.load import load_policy
from services.routing.policy_book import PolicyBook
from shared.contracts.events import NotificationFailed, NotificationRequested
from shared.unit_of_work import Work
from tests.support.factories import concern_received, failure_of
from tests.support.fakes import FakeCaseEvents, FakeDeadlines, FakeNotificationFailures, FakePolicyVersions, fake_work
from tests.unit.routing.conftest import ST_MARKS

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday in term, outside quiet hours


async def routing_over_fakes() -> Routing:
    deadlines = FakeDeadlines()
    book = PolicyBook(FakePolicyVersions())
    await book.adopt(load_policy(ST_MARKS), session=fake_work().session, deadlines=deadlines, now=NOW)
    return Routing(policies=book, case_events=FakeCaseEvents(deadlines), deadlines=deadlines, clock=lambda: NOW)


async def outcome(batches: list[list[NotificationFailed]], routing: Routing) -> tuple[list[tuple[str, str]], dict]:
    """The fallback requests (person, channel) and every deadline's due time after handling `batches` in turn."""
    requested: list[tuple[str, str]] = []
    woken: list[bool] = []
    failures = FakeNotificationFailures()
    for batch in batches:
        work = fake_work()
        await on_notifications_failed(
            batch, work=work, routing=routing, failures=failures, wake_scheduler=lambda: woken.append(True)
        )
        requested += [(e.payload.recipient.person_id, e.payload.channel) for e in work.emitted]
        for wake in work.woken:
            wake()
    deadlines = routing.deadlines
    assert isinstance(deadlines, FakeDeadlines)
    return requested, {i: (row.due.due_at, row.status, bool(woken)) for i, row in deadlines.rows.items()}


async def test_failures_in_one_batch_end_as_the_same_failures_one_at_a_time() -> None:
    """Each failure sees those before it in the batch, never those after it: a low-urgency case asked for email
    only; email fails, then push (tried next) fails too: push is tried, then SMS, as when they came apart."""
    concern = concern_received()
    ends = []
    for one_at_a_time in (False, True):
        routing = await routing_over_fakes()
        work: Work = fake_work()
        await on_concerns_received([concern], work=work, routing=routing)
        deadlines = routing.deadlines
        assert isinstance(deadlines, FakeDeadlines)
        for row in deadlines.rows.values():
            if row.due.kind == "acknowledge":
                row.due.detail["urgency"] = "low"  # st-marks asks for email alone at low urgency
        requests = {e.payload.channel: e for e in work.emitted if isinstance(e, NotificationRequested)}
        failures = [failure_of(requests["email"]), failure_of(requests["push"])]
        ends.append(await outcome([[f] for f in failures] if one_at_a_time else [failures], routing))
    assert ends[0] == ends[1]
    requested, _ = ends[0]
    assert [channel for _, channel in requested] == ["push", "sms"]
