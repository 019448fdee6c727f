"""Intake test settings: one school (st-marks) known by its policy file's name, plus the test's own overrides."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings


def one_school(settings: Settings, folder: Path, **overrides: object) -> Settings:
    """`settings` for an intake that serves st-marks only (its policy file need only exist)."""
    (folder / "st-marks.yaml").write_text("# the school exists\n")
    return settings.model_copy(update={"policy_dir": str(folder), **overrides})
