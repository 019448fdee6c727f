"""Who may read a school's record through audit's queries: the console's auditor, the trust lead, no one else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.audit.query_gate import AUDIENCE, PolicyFolder, QueryGate, QueryRefused
from shared.actor_tokens import ActorVerifier, issue
from shared.contracts.envelope import utc_now
from shared.settings import Settings
from tests.support.actors import Issuer
from tests.support.schools import OTHER_SCHOOL, with_second_school
from tests.unit.routing.conftest import REPO

CONSOLE = Issuer(name="console")
OPERATOR = Issuer(name="operator")
POLICIES = REPO / "deploy" / "policies"


def gate(folder: Path = POLICIES) -> QueryGate:
    keys = {CONSOLE.name: CONSOLE.key.public_key(), OPERATOR.name: OPERATOR.key.public_key()}
    return QueryGate(ActorVerifier(keys, audience=AUDIENCE), PolicyFolder(folder))


def query(person: str, *, role: str | None, issuer: Issuer = CONSOLE, school: str = "st-marks") -> dict[str, Any]:
    token = issue(
        issuer.key,
        issuer=issuer.name,
        person_id=person,
        school_id="st-marks",
        now=utc_now(),
        audience=AUDIENCE,
        role=role,
    )
    return {"query": "replay", "school_id": school, "assertion": token}


def test_the_consoles_auditor_and_the_policys_trust_lead_may_read_their_school() -> None:
    auditor = gate().asker(query("auditor-1", role="auditor"), now=utc_now())
    lead = gate().asker(query("education-safeguarding-service", role="trust_safeguarding_lead"), now=utc_now())
    assert (auditor.person_id, auditor.role, auditor.school_ids) == ("auditor-1", "auditor", {"st-marks"})
    assert (lead.role, lead.school_ids) == ("trust_safeguarding_lead", {"st-marks"})


def test_a_trust_sees_every_school_of_the_trust(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    with_second_school(Settings(policy_dir=str(POLICIES), signing_key="unit"), folder)  # writes both policies
    for path in folder.glob("*.yaml"):
        path.write_text(path.read_text().replace("  trust: null\n", "  trust: Oak Trust\n", 1))
    asker = gate(folder).asker(query("auditor-1", role="auditor", school=OTHER_SCHOOL), now=utc_now())
    assert asker.school_ids == {"st-marks", OTHER_SCHOOL}


# Each document is made when its test runs: a token made at collection would expire before a long session got here.
@pytest.mark.parametrize(
    ("make", "code"),
    [
        # A role no policy names is believed only from the console, whose accounts give it.
        (lambda: query("auditor-1", role="auditor", issuer=OPERATOR), "not_permitted"),
        # A trust lead must be one in the policy; any other role may not read the record here.
        (lambda: query("s-bird", role="trust_safeguarding_lead"), "not_permitted"),
        (lambda: query("s-bird", role="designated_safeguarding_lead"), "not_permitted"),
        (lambda: query("s-bird", role=None), "not_permitted"),
        (lambda: query("auditor-1", role="auditor", school="oak-academy"), "wrong_school"),
        (lambda: {**query("auditor-1", role="auditor"), "actor": {"id": "auditor-1"}}, "claimed_actor"),
        (lambda: {"query": "replay", "school_id": "st-marks"}, "unsigned"),
    ],
)
def test_everyone_else_is_refused_with_a_reason(make: Callable[[], dict[str, Any]], code: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        gate().asker(make(), now=utc_now())
    assert refused.value.code == code


def test_a_token_for_routing_does_not_open_the_record() -> None:
    routing_token = CONSOLE.token("auditor-1")
    with pytest.raises(QueryRefused) as refused:
        gate().asker({"query": "replay", "school_id": "st-marks", "assertion": routing_token}, now=utc_now())
    assert refused.value.code == "wrong_audience"
