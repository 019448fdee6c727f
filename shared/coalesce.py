"""Many callers' single-row writes as one statement: what arrives while one group is written goes in the next.

Nothing waits for company: a caller alone is written at once, and under load each round trip carries every item
that arrived while the previous one was in flight (as a group commit does). A group that fails is written again
one item at a time, so each caller gets its own outcome and one bad item never fails the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalesced(Generic[Item, Result]):
    """`await submit(item)` runs `write_all([..., item, ...])` and returns this item's result (or raises its error)."""

    def __init__(
        self,
        write_all: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        limit: int = 200,
        size: Callable[[Item], int] = lambda item: 0,
        max_size: int = 8 * 1024 * 1024,
    ) -> None:
        """At most `limit` items a group, and items of at most `max_size` (by `size`) together; a bigger one alone."""
        self._write_all = write_all
        self._limit = limit
        self._size = size
        self._max_size = max_size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_groups())
        return await done

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                taken = self._group_length()
                group, self._waiting = self._waiting[:taken], self._waiting[taken:]
                if len(group) == 1:
                    await self._write(group)
                    continue
                try:
                    results = await self._write_all([item for item, _ in group])
                    if len(results) != len(group):
                        raise RuntimeError(f"{len(results)} results for {len(group)} items")
                except Exception:
                    for one in group:  # each alone: its own result, or its own error
                        await self._write([one])
                else:
                    for (_, done), result in zip(group, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._writer = None

    def _group_length(self) -> int:
        """How many of the waiting items the next group takes: within the limits, and always the first."""
        total = 0
        for taken, (item, _) in enumerate(self._waiting[: self._limit]):
            total += self._size(item)
            if taken and total > self._max_size:
                return taken
        return min(len(self._waiting), self._limit)

    async def _write(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        [(item, done)] = group
        try:
            [result] = await self._write_all([item])  # (a wrong count raises here, as this item's error)
        except Exception as failure:
            if not done.done():
                done.set_exception(failure)
        else:
            if not done.done():
                done.set_result(result)
