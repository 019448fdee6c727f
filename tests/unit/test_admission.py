"""The consumer edge's checks, as a table: which events can be true, and why the others are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.admission import PolicyFolderSchools, publisher_of, refusal
from tests.support.factories import concern_received

ROOT = "sg"


def known(school_id: str) -> bool:
    return school_id == "st-marks"


@pytest.mark.parametrize(
    ("subject", "school_id", "expected"),
    [
        ("sg.st-marks.concern.received", "st-marks", None),
        ("sg.oak-academy.concern.received", "st-marks", "the subject names school oak-academy but the event names"),
        ("sg.st-marks.case.opened", "st-marks", "the subject carries case.opened but the event is concern.received"),
        ("sg.st-marks.concern", "st-marks", "is not <sg>.<school>.<aggregate>.<event>"),
        ("other.st-marks.concern.received", "st-marks", "is not <sg>"),
        ("sg.no-school.concern.received", "no-school", "school no-school has no adopted policy"),
    ],
)
def test_an_event_is_admitted_only_on_its_own_subject_at_a_known_school(
    subject: str, school_id: str, expected: str | None
) -> None:
    event = concern_received(school_id=school_id)
    reason = refusal(subject, event, root=ROOT, known_school=known)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.parametrize(
    ("event_type", "publisher"),
    [
        ("concern.received", "intake"),
        ("case.command_refused", "routing"),
        ("notification.requested", "routing"),
        ("notification.acknowledged", "notifications"),
        ("ledger.rewritten", None),
        ("concern.deleted", None),
    ],
)
def test_each_event_type_has_the_one_publisher_the_permission_matrix_names(
    event_type: str, publisher: str | None
) -> None:
    assert publisher_of(event_type) == publisher


def test_the_policy_folder_names_the_known_schools_and_is_read_again_for_a_new_one(tmp_path: Path) -> None:
    schools = PolicyFolderSchools(tmp_path)
    (tmp_path / "st-marks.yaml").write_text("school: {}\n")
    assert schools("st-marks") and not schools("oak-academy")
    (tmp_path / "oak-academy.yaml").write_text("school: {}\n")
    assert schools("oak-academy")
