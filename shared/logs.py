"""Logging set-up: one line per record, quiet per-message faststream logs unless DEBUG."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once for a service process."""
    root = logging.getLogger()
    if getattr(root, "_safeguard_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("faststream").setLevel(logging.WARNING)
    root._safeguard_configured = True  # type: ignore[attr-defined]
