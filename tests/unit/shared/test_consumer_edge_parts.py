"""Small parts of the consumer edge: the pull loop's rounds and stream sequences read from reply subjects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest
from nats.aio.msg import Msg

from shared.consumer import stream_sequence
from shared.contracts.envelope import Actor, utc_now
from shared.contracts.events import CaseOpened, CaseOpenedPayload
from shared.dead_letters import PARSED, DeadLetterMiddleware, _durable_of
from shared.long_poll import _Rounds


class Poll:
    """A stand-in long poll: `gather` hands out the next prepared batch; `take_queued` what has been delivered."""

    def __init__(self, batches: list[list[str]], queued: list[list[str]]) -> None:
        self.batches = batches
        self.queued = queued
        self.windows: list[float | None] = []

    async def gather(self, batch: int, *, window: float) -> list[Any]:
        self.windows.append(window)
        return self.batches.pop(0)

    async def take_queued(self, batch: int) -> list[Any]:
        return self.queued.pop(0)


async def test_a_round_waits_once_then_takes_only_what_was_delivered_and_ends_when_nothing_was() -> None:
    poll = Poll(batches=[["a"], ["d"], ["e"]], queued=[["b", "c"], []])
    fetch = _Rounds(poll, window=0.01)  # type: ignore[arg-type]
    assert await fetch(64, timeout=0.001) == ["a"]  # waited for the first message
    assert await fetch(63, timeout=0.0005) == ["b", "c"]  # faststream asks again: what arrived meanwhile
    with pytest.raises(nats.errors.TimeoutError):  # nothing more: the loop hands its batch over now
        await fetch(61, timeout=0.0001)
    assert await fetch(64, timeout=0.001) == ["d"]  # the next round waits again
    fetch.new_round()  # that batch was handed over when faststream's deadline passed, with no second call
    assert await fetch(64, timeout=0.001) == ["e"]  # so this round, too, begins by waiting (and gathering)
    assert poll.windows == [0.01, 0.01, 0.01]  # the window is the runtime's, not faststream's deadline


def reply(subject: str) -> Msg:
    return Msg(_client=None, subject="sg.x", reply=subject, data=b"")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.ACK.SAFEGUARD_EVENTS.routing-concerns.1.1234.99.1764440000000000000.10",
        "$JS.ACK.hub.ACCOUNTHASH.SAFEGUARD_EVENTS.routing-concerns.2.4321.99.1764440000000000000.10.token",
        "$JS.ACK.hub.ACCOUNTHASH.SAFEGUARD_EVENTS.routing-concerns.2.4321.99.1764440000000000000.10",
    ],
)
def test_the_stream_sequence_is_the_one_nats_reads_from_the_reply_subject(subject: str) -> None:
    message = reply(subject)
    assert stream_sequence(message) == message.metadata.sequence.stream


@pytest.mark.parametrize("subject", ["", "_INBOX.abc.def", "$JS.ACK.too.short"])
def test_a_message_that_is_not_from_a_stream_has_no_sequence(subject: str) -> None:
    assert stream_sequence(reply(subject)) is None


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.ACK.SAFEGUARD_EVENTS.intake-receipts.1.1234.99.1764440000000000000.10",
        "$JS.ACK.hub.ACCOUNTHASH.SAFEGUARD_EVENTS.intake-receipts.2.4321.99.1764440000000000000.10.token",
    ],
)
def test_the_durable_is_the_one_nats_reads_from_the_reply_subject(subject: str) -> None:
    message = reply(subject)
    assert _durable_of(message) == message.metadata.consumer == "intake-receipts"


class Delivered:
    """A pulled message that records being acked."""

    def __init__(self, subject: str, data: bytes, durable: str = "intake-receipts") -> None:
        self.subject, self.data, self.acked = subject, data, False
        self.reply = f"$JS.ACK.SAFEGUARD_EVENTS.{durable}.1.7.7.1764440000000000000.0"

    async def ack(self) -> None:
        self.acked = True


class Parked:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def park(self, message: Any, *, consumer: str, reason: str) -> None:
        self.reasons.append(reason)


async def test_the_edge_acks_unread_the_types_a_consumers_handler_does_not_read_and_parses_the_rest() -> None:
    opened = CaseOpened.new(
        CaseOpenedPayload(case_id="c1", reference="SG-1", concern_event_id="e1", kind="other", policy_version=1),
        school_id="st-marks",
        aggregate_id="c1",
        actor=Actor(id="routing", role="service"),
        occurred_at=utc_now(),
    )
    unread = Delivered("sg.st-marks.case.triaged", b"not even JSON: never parsed")
    kept = Delivered("sg.st-marks.case.opened", opened.to_json())
    other = Delivered("sg.st-marks.case.triaged", b"not JSON", durable="console-read-model")  # reads every type
    handed: list[Any] = []

    async def call_next(msg: Any) -> None:
        handed.extend(getattr(msg, PARSED))

    parked = Parked()
    edge = DeadLetterMiddleware(
        None,
        context=None,
        dead_letters=parked,  # type: ignore[arg-type]
        handles={"intake-receipts": frozenset({"case.opened"})},
    )
    batch = SimpleNamespace(raw_message=[unread, kept], body=None)
    await edge.consume_scope(call_next, batch)  # type: ignore[arg-type]
    assert handed == [opened] and batch.raw_message == [kept]
    assert unread.acked and not kept.acked and parked.reasons == []  # `kept` is acked once handled
    await edge.consume_scope(call_next, SimpleNamespace(raw_message=[other], body=None))  # type: ignore[arg-type]
    assert not other.acked and len(parked.reasons) == 1  # a durable without `handles` parses everything
