"""A proposed policy version, before it is adopted: `policy check`'s output and a diff against the adopted one.

Pure: text in, lines out. Edits made on the admin pages (a person's preferred channels, the quiet hours) are
new versions too: the adopted document with the change and the version raised by one, written as YAML.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import yaml

from services.routing.policy.check import check_report

LARGEST_UPLOAD = 1_000_000  # characters; routing refuses larger ones too


@dataclass(frozen=True)
class Draft:
    """What the admin page shows before adopting: the check, the diff and whether it may be sent to routing."""

    text: str
    check: tuple[str, ...]
    diff: tuple[str, ...]
    version: int | None
    school_id: str | None
    adoptable: bool
    problem: str = ""


def as_yaml(document: dict[str, Any]) -> str:
    """A policy document as YAML, in the policy's own key order (comments are not kept in adopted documents)."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def draft(
    text: str, *, school_id: str, adopted: dict[str, Any] | None, adopted_version: int | None, today: date
) -> Draft:
    """Check `text` as a new version of `school_id`'s policy and diff it against the adopted document."""
    if len(text) > LARGEST_UPLOAD:
        return Draft(text, (), (), None, None, adoptable=False, problem="The file is larger than 1 MB.")
    report = check_report(text, source="uploaded policy", today=today)
    policy = report.policy
    if policy is None:
        return Draft(text, report.lines, (), None, None, adoptable=False, problem="The file is not a valid policy.")
    before = as_yaml(adopted).splitlines() if adopted else []
    after = as_yaml(policy.model_dump(mode="json")).splitlines()
    diff = tuple(
        difflib.unified_diff(
            before,
            after,
            fromfile=f"adopted version {adopted_version}",
            tofile=f"version {policy.version}",
            lineterm="",
        )
    )
    problem = ""
    if policy.school.id != school_id:
        problem = f"This file is the policy of {policy.school.id}, not {school_id}."
    elif report.refused:
        problem = "policy check refuses this file."
    elif adopted_version is not None and policy.version <= adopted_version:
        problem = f"Raise the version: {adopted_version} is adopted, so this one must be {adopted_version + 1} or more."
    elif not diff:
        problem = "This is the adopted policy, unchanged."
    return Draft(text, report.lines, diff, policy.version, policy.school.id, adoptable=not problem, problem=problem)


def _next_version(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "version": int(document["version"]) + 1}


def with_preference(document: dict[str, Any], *, person_id: str, prefer: tuple[str, ...]) -> dict[str, Any]:
    """The next version with `person_id`'s own choice of channels (used for the policy's personal_choice)."""
    people = []
    for person in document["people"]:
        if person["id"] == person_id:
            person = {**person, "contact": {**person["contact"], "prefer": list(prefer)}}
        people.append(person)
    return {**_next_version(document), "people": people}


def with_person_quiet_hours(
    document: dict[str, Any], *, person_id: str, starts: time | None, ends: time | None
) -> dict[str, Any]:
    """The next version with `person_id`'s own quiet hours (None for both: the school's apply to them)."""
    people = []
    for person in document["people"]:
        if person["id"] == person_id:
            contact = {key: value for key, value in person["contact"].items() if key != "quiet_hours"}
            if starts is not None and ends is not None:
                contact["quiet_hours"] = {"starts": starts.strftime("%H:%M"), "ends": ends.strftime("%H:%M")}
            person = {**person, "contact": contact}
        people.append(person)
    return {**_next_version(document), "people": people}


def with_quiet_hours(document: dict[str, Any], *, starts: time | None, ends: time | None) -> dict[str, Any]:
    """The next version with these quiet hours (None for both: no quiet hours)."""
    quiet = (
        None if starts is None or ends is None else {"starts": starts.strftime("%H:%M"), "ends": ends.strftime("%H:%M")}
    )
    notifications = {**document.get("notifications", {}), "quiet_hours": quiet}
    return {**_next_version(document), "notifications": notifications}
