"""A published event's JSON schema never changes: a change needs a new version class (and an upcaster).

To record the schema of a *new* event class run: SAFEGUARD_UPDATE_SNAPSHOTS=1 pytest tests/unit/contracts
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.contracts import registry

SNAPSHOTS = Path(__file__).parent / "snapshots"
CLASSES = sorted(registry().classes().items())


@pytest.mark.parametrize(("key", "cls"), CLASSES, ids=[f"{t}.v{v}" for (t, v), _ in CLASSES])
def test_event_schema_matches_its_snapshot(key: tuple[str, int], cls: type[BaseModel]) -> None:
    event_type, version = key
    snapshot = SNAPSHOTS / f"{event_type}.v{version}.json"
    schema = json.dumps(cls.model_json_schema(), indent=1, sort_keys=True) + "\n"
    if not snapshot.exists() and os.environ.get("SAFEGUARD_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(schema)
    assert snapshot.exists(), f"no snapshot for {event_type} v{version}: record it (see module docstring)"
    assert snapshot.read_text() == schema, (
        f"{event_type} v{version} changed after publication: add v{version + 1} with an upcaster instead"
    )


def test_every_snapshot_still_has_its_class() -> None:
    recorded = {path.name.removesuffix(".json") for path in SNAPSHOTS.glob("*.json")}
    assert recorded == {f"{t}.v{v}" for (t, v), _ in CLASSES}
