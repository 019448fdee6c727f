"""A person's own quiet hours: their non-urgent messages wait for them; everyone else keeps the school's."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from services.routing.policy.load import parse_policy
from services.routing.quiet import held_back
from shared.contracts.events import PersonRef
from tests.conftest import REPO_ROOT
from tests.support.factories import notification_requested

TEXT = (REPO_ROOT / "deploy" / "policies" / "st-marks.yaml").read_text()
EVENING = datetime(2026, 6, 10, 18, 30, tzinfo=UTC)  # 19:30 in London, before the school's quiet hours (21:00)


def with_own_quiet_hours(person_id: str) -> str:
    document = yaml.safe_load(TEXT)
    for person in document["people"]:
        if person["id"] == person_id:
            person["contact"]["quiet_hours"] = {"starts": "18:00", "ends": "08:00"}
    return yaml.safe_dump(document, sort_keys=False)


def test_only_the_person_who_chose_quiet_hours_waits_and_never_for_an_urgent_message() -> None:
    policy = parse_policy(with_own_quiet_hours("s-bird"))
    bird, other = policy.person("s-bird"), next(p for p in policy.people if p.id != "s-bird")
    assert bird is not None
    requests = [
        notification_requested(
            channel="email",
            address="x@example.org",
            recipient=PersonRef(person_id=person.id, name=person.name, role=role),
            urgency=urgency,
        )
        for person, role in ((bird, "designated_safeguarding_lead"), (other, "deputy_designated_safeguarding_lead"))
        for urgency in ("medium", "immediate")
    ]
    now_events, held = held_back(requests, policy=policy, now=EVENING)
    [(case_and_until, waiting)] = held.items()
    assert [(r.payload.recipient.person_id, r.payload.urgency) for r in waiting] == [("s-bird", "medium")]
    assert case_and_until[1] == datetime(2026, 6, 11, 7, 0, tzinfo=UTC)  # 08:00 in London
    assert len(now_events) == 3
