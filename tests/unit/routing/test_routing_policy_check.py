"""`policy check` warnings: rules that can never match, overlapping rules, empty roles, the review date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from services.routing.policy import Policy
from services.routing.policy.check import check_policy, describe_rule

Build = Callable[..., Policy]
BEFORE_REVIEW = date(2025, 1, 1)


def rule(rule_id: str, when: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule_id, "section": "5", "title": rule_id, "when": when, "then": then}


def warnings(policy: Policy, *, today: date = BEFORE_REVIEW) -> list[str]:
    return [str(finding) for finding in check_policy(policy, today=today)]


def test_a_clean_policy_has_no_warnings(school: Build) -> None:
    policy = school([rule("bullying", {"kinds": ["online_bullying"]}, {"category": "bullying"})])
    assert warnings(policy) == []


def test_a_passed_review_date_is_reported(school: Build) -> None:
    assert warnings(school([]), today=date(2030, 9, 11)) == [
        "the policy was due for review by 2030-09-01: 10 days overdue"
    ]


def test_an_impossible_age_range_can_never_match(school: Build) -> None:
    policy = school([rule("odd", {"subject_age": {"at_least": 13, "under": 11}}, {"category": "odd"})])
    assert warnings(policy) == ["rule odd: can never match: subject_age admits no age from 0 to 130"]


def test_a_rule_for_platforms_the_form_does_not_offer_can_never_match_a_form_report(school: Build) -> None:
    policy = school([rule("myspace", {"platforms": ["MySpace"]}, {"guidance": "Old site."})])
    assert warnings(policy) == [
        "rule myspace: can never match: none of its platforms ['myspace'] is offered on the report form"
    ]


def test_rules_that_set_different_categories_for_the_same_concern_overlap(school: Build) -> None:
    policy = school(
        [
            rule("bullying", {"kinds": ["online_bullying"]}, {"category": "bullying"}),
            rule("young", {"subject_age": {"under": 11}}, {"category": "young_child"}),
            rule("staff", {"kinds": ["staff_conduct"]}, {"category": "staff"}),
        ]
    )
    first, second = warnings(policy)
    assert first.startswith("rule bullying: overlaps rule young: one concern can match both")
    assert "bullying comes first, so its category is used" in first
    assert second.startswith("rule young: overlaps rule staff")


def test_rules_kept_apart_by_their_conditions_do_not_overlap(school: Build) -> None:
    policy = school(
        [
            rule("in-hours", {"kinds": ["online_bullying"], "in_school_hours": True}, {"category": "a"}),
            rule("out-of-hours", {"kinds": ["online_bullying"], "in_school_hours": False}, {"category": "b"}),
            rule("learners", {"kinds": ["other"], "about": ["learner"]}, {"category": "c"}),
            rule("staff", {"kinds": ["other"], "about": ["staff"]}, {"category": "d"}),
            rule("young", {"kinds": ["staff_conduct"], "reporter_age": {"under": 11}}, {"category": "e"}),
            rule("older", {"kinds": ["staff_conduct"], "reporter_age": {"at_least": 11}}, {"category": "f"}),
        ]
    )
    assert warnings(policy) == []


def test_roles_nobody_holds_are_reported_with_who_takes_their_place(school: Build) -> None:
    data_people = [
        {"id": "dsl", "name": "Ms D Lead", "roles": ["designated_safeguarding_lead"], "contact": {"push": True}},
        {"id": "head", "name": "Dr H Teacher", "roles": ["headteacher"], "contact": {"push": True}},
    ]
    found = warnings(school([], people=data_people))
    assert (
        "nobody holds the role pastoral_lead: what it would receive goes to the designated_safeguarding_lead instead"
        in found
    )
    assert "nobody holds the role named_governor: what it would receive goes to the headteacher instead" in found
    assert len(found) == 5


def test_rules_that_do_nothing_or_match_everything_are_reported(school: Build) -> None:
    policy = school([rule("empty", {"kinds": ["other"]}, {}), rule("always", {}, {"guidance": "Hello."})])
    assert warnings(policy) == [
        "rule empty: matches but changes nothing: it sets no category, urgency, people or text",
        "rule always: has no conditions, so it matches every concern",
    ]


def test_a_rule_is_described_in_one_line(st_marks: Policy) -> None:
    by_id = {r.id: r for r in st_marks.rules}
    assert describe_rule(by_id["under-13-on-13-plus-platform"]) == (
        "when about: learner; platforms: tiktok, instagram, snapchat, facebook, youtube, whatsapp, discord, x, "
        "twitch; subject age: under 13 -> (no category); parents inform"
    )


def test_a_preference_the_policy_never_uses_or_the_person_cannot_receive_is_reported(school: Build) -> None:
    people = school([]).model_dump(mode="json")["people"]
    people[0]["contact"] = {"email": "lead@example.org", "prefer": ["sms"]}
    no_choice = school([], people=people)
    with_choice = school([], people=people, notifications={"personal_choice": ["low"]})
    assert warnings(no_choice) == [
        "dsl prefers ['sms'] but the policy allows no choice",
        "dsl prefers ['sms'] but has no address for it",
    ]
    assert warnings(with_choice) == ["dsl prefers ['sms'] but has no address for it"]
