"""Garbage-collector settings for a long-running service process.

Starting a service creates a few hundred thousand objects that live as long as the process (modules, pydantic
models and validators, SQLAlchemy metadata, faststream's and FastAPI's wiring) and handling events creates
short-lived ones that reference counting frees. At the default thresholds the cyclic collector runs every 700
allocations and each oldest-generation pass walks every long-lived object again, for almost nothing to free.
Freezing what exists once the service is built moves it out of the collector's sight, and a larger first
threshold makes the young collections rarer; cycles are still collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle_collector() -> None:
    """Call once the service is built, before it starts handling work."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
