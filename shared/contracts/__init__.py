"""Event contracts: the envelope, the concern shape and every event class.

Nothing is imported eagerly, so a command that only needs the concern shape (`safeguard route`) does not pay
for every event class; the registry loads the event modules the first time it parses or lists events.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Actor": "shared.contracts.envelope",
    "Event": "shared.contracts.envelope",
    "EventRejected": "shared.contracts.envelope",
    "parse_event": "shared.contracts.envelope",
    "registry": "shared.contracts.envelope",
    "utc_now": "shared.contracts.envelope",
    "events": "shared.contracts.events",
    "case_events": "shared.contracts.case_events",
    "record_events": "shared.contracts.record_events",
    "account_events": "shared.contracts.account_events",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shared.contracts' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    return module if module_name.endswith(f".{name}") else getattr(module, name)
