"""Routing's derived ids are uuid5s of their causes: the same causes, the same id, as before it was written out."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain import _NAMESPACE, derived_id

parts = st.lists(st.one_of(st.text(), st.integers(), st.uuids()), min_size=1, max_size=6)


@given(parts)
def test_a_derived_id_is_the_uuid5_of_its_parts_joined(given_parts: list[object]) -> None:
    assert derived_id(*given_parts) == str(uuid.uuid5(_NAMESPACE, "|".join(str(part) for part in given_parts)))


def test_a_derived_id_is_a_version_5_uuid() -> None:
    made = uuid.UUID(derived_id("case", uuid.UUID(int=7)))
    assert (made.version, made.variant) == (5, uuid.RFC_4122)
