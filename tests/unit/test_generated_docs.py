"""The committed event catalogue and API references are what the code generates now."""

from __future__ import annotations

import json

from services.docs import REFERENCE, generated


def test_committed_reference_docs_are_current() -> None:
    for name, text in generated().items():
        assert (REFERENCE / name).read_text() == text, f"docs/reference/{name} is stale: run python -m services.docs"


def test_the_catalogue_names_every_event_with_its_schema() -> None:
    from shared.contracts import registry

    catalogue = json.loads(generated()["asyncapi.json"])
    for (event_type, version), event_class in registry().classes().items():
        if registry().superseded(event_type, version):
            assert f"{event_type} v{version}" not in catalogue["channels"], (
                "a superseded version is read, not published"
            )
        elif event_class.__module__.startswith("shared.contracts"):  # tests may register classes of their own
            assert f"{event_type} v{version}" in catalogue["channels"], event_type
