"""Small parts of the consumer edge: the pull loop's rounds and stream sequences read from reply subjects."""

from __future__ import annotations

from typing import Any

import nats.errors
import pytest
from nats.aio.msg import Msg

from shared.consumer import stream_sequence
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
