"""A service settles the garbage collector once it is built: what exists is frozen, young collections are rarer."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from shared.collector import YOUNG_THRESHOLD, settle_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settling_freezes_what_exists_and_raises_only_the_young_threshold(restored_collector: None) -> None:
    _, older, oldest = gc.get_threshold()
    gc.unfreeze()
    settle_collector()
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (YOUNG_THRESHOLD, older, oldest)


def test_cycles_made_after_settling_are_still_collected(restored_collector: None) -> None:
    settle_collector()

    class Node:
        partner: object

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    watched = weakref.ref(first)
    del first, second
    gc.collect()
    assert watched() is None
