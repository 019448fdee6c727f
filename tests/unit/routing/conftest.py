"""A small made-up school for the policy engine's tests, and St Mark's real policy file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.routing.policy import Policy, load_policy, policy_from_data
from shared.contracts.concern import ConcernReceivedPayload

REPO = Path(__file__).resolve().parents[3]
ST_MARKS = REPO / "deploy" / "policies" / "st-marks.yaml"
TUESDAY = datetime(2024, 3, 5, 10, 15, tzinfo=UTC)


def _person(person_id: str, name: str, *roles: str) -> dict[str, Any]:
    return {"id": person_id, "name": name, "roles": list(roles), "contact": {"email": f"{person_id}@example.org"}}


def school_policy_data(*, rules: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """Policy data for a made-up school (every name synthetic); `rules` and top-level keys can be replaced."""
    data: dict[str, Any] = {
        "version": 3,
        "school": {"id": "test-school", "name": "Test School"},
        "source": {"title": "Test policy", "next_review": "2030-09-01"},
        "people": [
            _person("dsl", "Ms D Lead", "designated_safeguarding_lead", "leadership_team"),
            _person("deputy-a", "Mr A Deputy", "deputy_designated_safeguarding_lead"),
            _person("deputy-b", "Mrs B Deputy", "deputy_designated_safeguarding_lead"),
            _person("head", "Dr H Teacher", "headteacher", "leadership_team"),
            _person("governor", "Mx G Chair", "named_governor"),
            _person("pastoral", "Mr P Care", "pastoral_lead"),
            _person("lado", "Area LADO", "local_authority_designated_officer") | {"external": True},
        ],
        "acknowledge_within": {
            "immediate": {"minutes": 15},
            "high": {"hours": 1},
            "medium": {"working_hours": 4},
            "low": {"working_days": 1},
        },
        "kinds": [
            {"id": "online_bullying", "label": "Bullying online"},
            {"id": "staff_conduct", "label": "Staff conduct"},
            {"id": "other", "label": "Something else"},
        ],
        "platforms": [{"id": "tiktok", "label": "TikTok"}, {"id": "roblox", "label": "Roblox"}],
        "report_form": {
            "questions": [
                {"id": "kind", "type": "choice", "field": "kind", "options_from": "kinds", "text": "What?"},
                {"id": "immediate_risk", "type": "yes_no", "field": "immediate_risk", "text": "At risk now?"},
            ]
        },
        "fallback": {"category": "triage", "urgency": "medium", "guidance": "The DSL triages this."},
        "rules": rules if rules is not None else [],
    }
    data.update(overrides)
    return data


def make_concern(**fields: Any) -> ConcernReceivedPayload:
    """A concern with sensible defaults; any field may be given."""
    body: dict[str, Any] = {
        "reporter": {"role": "staff"},
        "people": [{"role": "learner", "involvement": "subject", "age": 10}],
        "kind": "online_bullying",
        "immediate_risk": "no",
        "summary": "A made-up concern for a test",
        "reference": "SG-TEST-1",
        "channel": "web_form",
        "raw_input_id": "raw-1",
        "received_at": TUESDAY,
    }
    body.update(fields)
    return ConcernReceivedPayload.model_validate(body)


@pytest.fixture
def school() -> Callable[..., Policy]:
    """Build the made-up school's policy with the given rules (and any top-level overrides)."""

    def build(rules: list[dict[str, Any]] | None = None, **overrides: Any) -> Policy:
        return policy_from_data(school_policy_data(rules=rules, **overrides))

    return build


@pytest.fixture
def concern() -> Callable[..., ConcernReceivedPayload]:
    """Build a concern: `concern(kind=..., people=[...])`."""
    return make_concern


@pytest.fixture(scope="session")
def st_marks() -> Policy:
    """St Mark's policy as shipped in deploy/policies."""
    return load_policy(ST_MARKS)
