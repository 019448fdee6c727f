"""Loading a policy file: what makes it invalid, and what its digest depends on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.routing.policy import (
    Policy,
    PolicyError,
    SchoolRole,
    decide,
    load_policy,
    parse_policy,
    policy_from_data,
)
from services.routing.policy.check import check_policy

REPO = Path(__file__).resolve().parents[3]
ST_MARKS = REPO / "deploy" / "policies" / "st-marks.yaml"


def st_marks_data() -> dict[str, Any]:
    return yaml.safe_load(ST_MARKS.read_text(encoding="utf-8"))


def test_st_marks_loads_with_its_people_version_and_review_date(st_marks: Policy) -> None:
    assert st_marks.school.id == "st-marks"
    assert st_marks.version == 1
    assert str(st_marks.source.next_review) == "2022-10-31"
    assert [p.name for p in st_marks.holders(SchoolRole.designated_safeguarding_lead)] == ["Mr S Bird"]
    assert [p.name for p in st_marks.holders(SchoolRole.deputy_designated_safeguarding_lead)] == [
        "Mrs R Crane",
        "Mrs L Hammond",
    ]
    assert [p.name for p in st_marks.holders(SchoolRole.named_governor)] == ["Mr D Hill"]
    assert st_marks.digest.startswith("sha256:") and len(st_marks.digest) == 7 + 64


def test_every_rule_cites_a_section_of_the_policy(st_marks: Policy) -> None:
    sections = {"1", "2", "3", "4", "4.1", "4.2", "5", "6", "7"}
    for rule in st_marks.rules:
        cited = {part.strip() for part in rule.section.split(",")}
        assert cited <= sections, rule.id


def test_the_digest_ignores_layout_and_comments_but_not_content() -> None:
    text = ST_MARKS.read_text(encoding="utf-8")
    original = parse_policy(text)
    reformatted = parse_policy("# a new comment\n" + yaml.safe_dump(yaml.safe_load(text), sort_keys=True))
    assert reformatted.digest == original.digest
    changed = st_marks_data()
    changed["rules"][0]["then"]["urgency"] = "medium"
    assert policy_from_data(changed).digest != original.digest


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param(lambda d: d.pop("version"), "version: Field required", id="no version"),
        pytest.param(
            lambda d: d.__setitem__("people", [p for p in d["people"] if p["id"] != "s-bird"]),
            "must name a designated_safeguarding_lead",
            id="no dsl",
        ),
        pytest.param(
            lambda d: d["acknowledge_within"].pop("immediate"), "missing ['immediate']", id="no immediate time"
        ),
        pytest.param(
            lambda d: d["rules"][0]["when"].__setitem__("kinds", ["staff_personal_acount_contact"]),
            "names kinds the policy does not list",
            id="misspelt kind",
        ),
        pytest.param(
            lambda d: d["rules"][0]["then"].__setitem__("notify", ["dsl"]),
            "rules[0].then.notify[0]",
            id="unknown role",
        ),
        pytest.param(lambda d: d["rules"][0].pop("section"), "section: Field required", id="rule without section"),
        pytest.param(
            lambda d: d["rules"][1].__setitem__("id", d["rules"][0]["id"]), "appears more than once", id="same id"
        ),
        pytest.param(
            lambda d: d["working_days"].__setitem__("day_ends", 1020),
            'write times in quotes, like "08:00"',
            id="unquoted time",
        ),
        pytest.param(
            lambda d: d["working_days"].__setitem__("timezone", "Europe/Londn"), "unknown timezone", id="bad zone"
        ),
        pytest.param(
            lambda d: d["acknowledge_within"].__setitem__("low", {"hours": 1, "working_days": 1}),
            "exactly one of",
            id="two lengths of time",
        ),
        pytest.param(
            lambda d: d["people"][0].__setitem__("contact", {}), "at least one way to be reached", id="no contact"
        ),
        pytest.param(
            lambda d: d["report_form"].__setitem__(
                "questions", [q for q in d["report_form"]["questions"] if q["id"] != "immediate_risk"]
            ),
            "must ask a question for 'immediate_risk'",
            id="form without immediate risk",
        ),
        pytest.param(
            lambda d: d["rules"][0]["then"].__setitem__("notfiy", ["headteacher"]),
            "Extra inputs are not permitted",
            id="misspelt key",
        ),
    ],
)
def test_an_invalid_policy_is_refused_with_a_clear_reason(change: Any, complaint: str) -> None:
    data = st_marks_data()
    change(data)
    with pytest.raises(PolicyError) as refused:
        policy_from_data(data, source="st-marks.yaml")
    assert complaint in str(refused.value)
    assert str(refused.value).startswith("st-marks.yaml: ")


def test_a_key_given_twice_is_refused() -> None:
    text = ST_MARKS.read_text(encoding="utf-8").replace(
        "      urgency: high\n", "      urgency: high\n      urgency: low\n", 1
    )
    with pytest.raises(PolicyError, match="appears twice"):
        parse_policy(text)


def test_not_yaml_is_refused() -> None:
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse_policy("rules: [unclosed")


def test_a_list_is_not_a_policy() -> None:
    with pytest.raises(PolicyError, match="a policy is a mapping"):
        parse_policy("- one\n- two\n")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "nowhere.yaml")


def test_st_marks_checks_clean_except_for_its_overdue_review(st_marks: Policy) -> None:
    from datetime import date

    assert check_policy(st_marks, today=date(2022, 9, 1)) == []
    [overdue] = check_policy(st_marks, today=date(2024, 3, 5))
    assert "due for review by 2022-10-31" in str(overdue)
    assert "491 days overdue" in str(overdue)


def test_a_changed_copy_is_validated_afresh_with_its_own_digest(st_marks: Policy, concern: Any) -> None:
    quiet = st_marks.model_copy(update={"rules": []})
    assert quiet.digest != st_marks.digest
    assert decide(concern(), st_marks).rule_ids != ()
    assert decide(concern(), quiet).rule_ids == ()
