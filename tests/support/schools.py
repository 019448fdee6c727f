"""A deployment serving two schools, for tests that must show one school never sees the other's cases."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings
from tests.conftest import REPO_ROOT

OTHER_SCHOOL = "oak-academy"


def with_second_school(settings: Settings, folder: Path) -> Settings:
    """`settings` whose policy folder also holds Oak Academy's policy (St Mark's file under another school id)."""
    folder.mkdir(parents=True, exist_ok=True)
    st_marks = (REPO_ROOT / "deploy" / "policies" / "st-marks.yaml").read_text()
    (folder / "st-marks.yaml").write_text(st_marks)
    (folder / f"{OTHER_SCHOOL}.yaml").write_text(
        st_marks.replace(
            "  id: st-marks\n  name: St Mark's CEP School\n", f"  id: {OTHER_SCHOOL}\n  name: Oak Academy\n", 1
        )
    )
    return settings.model_copy(update={"policy_dir": str(folder)})
