"""Coalesced writes: concurrent callers share a round trip; a bad item fails alone; a lone caller waits for no one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.coalesce import Coalesced


class Writes:
    """A stand-in statement: records each group it is given; an item 'bad' fails any group it is in."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()

    async def write_all(self, items: Sequence[str]) -> list[str]:
        self.groups.append(list(items))
        await self.gate.wait()  # the round trip: everything submitted meanwhile waits for the next one
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]


async def test_callers_arriving_while_a_write_is_in_flight_share_the_next_one() -> None:
    writes = Writes()
    coalesced = Coalesced(writes.write_all)
    first = asyncio.create_task(coalesced.submit("a"))
    await asyncio.sleep(0)  # "a" is being written
    rest = [asyncio.create_task(coalesced.submit(item)) for item in "bcd"]
    await asyncio.sleep(0)
    writes.gate.set()
    assert await first == "A" and await asyncio.gather(*rest) == ["B", "C", "D"]
    assert writes.groups == [["a"], ["b", "c", "d"]]


async def test_a_failing_item_fails_alone_and_the_others_are_written() -> None:
    writes = Writes()
    writes.gate.set()
    coalesced = Coalesced(writes.write_all)
    outcomes = await asyncio.gather(*(coalesced.submit(item) for item in ("x", "bad", "y")), return_exceptions=True)
    assert outcomes[0] == "X" and outcomes[2] == "Y"
    assert isinstance(outcomes[1], ValueError)
    assert ["bad"] in writes.groups and ["x"] in writes.groups and ["y"] in writes.groups


async def test_a_write_that_returns_the_wrong_count_fails_its_callers_instead_of_leaving_them_waiting() -> None:
    async def short(items: Sequence[str]) -> list[str]:
        return []

    coalesced: Coalesced[str, str] = Coalesced(short)
    with pytest.raises(ValueError):
        await asyncio.wait_for(coalesced.submit("a"), timeout=1)


async def test_a_group_stops_at_its_size_and_an_item_bigger_than_that_goes_alone() -> None:
    writes = Writes()
    coalesced = Coalesced(writes.write_all, size=len, max_size=4)
    first = asyncio.create_task(coalesced.submit("a"))
    await asyncio.sleep(0)  # "a" is being written; the rest wait for the next round trips
    rest = [asyncio.create_task(coalesced.submit(item)) for item in ("bb", "cc", "d", "eeeeee", "f")]
    await asyncio.sleep(0)
    writes.gate.set()
    await asyncio.gather(first, *rest)
    assert writes.groups == [["a"], ["bb", "cc"], ["d"], ["eeeeee"], ["f"]]
