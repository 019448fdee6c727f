"""Intake test settings: one school (st-marks) known by its policy file's name, plus the test's own overrides."""

from __future__ import annotations

import socket
from pathlib import Path

from shared.settings import Settings


def one_school(settings: Settings, folder: Path, **overrides: object) -> Settings:
    """`settings` for an intake that serves st-marks only (its policy file need only exist)."""
    (folder / "st-marks.yaml").write_text("# the school exists\n")
    return settings.model_copy(update={"policy_dir": str(folder), **overrides})


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for a listener a test starts itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
