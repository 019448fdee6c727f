"""St Mark's scenario table: every case through the pure `decide`, then all of them through the CLI at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.routing.policy import Decision, Policy, decide, load_policy
from shared.contracts.concern import ConcernReceivedPayload

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"


@dataclass(frozen=True)
class Scenario:
    """One row of a scenario table: a concern and what the policy says must happen."""

    name: str
    policy_path: Path
    concern: ConcernReceivedPayload
    expect: dict[str, Any]


def _concern(case: dict[str, Any], *, reference: str, received_at: str, risk: str | None) -> ConcernReceivedPayload:
    body = dict(case["concern"])
    if risk is not None:
        body.setdefault("immediate_risk", risk)
    body.setdefault("summary", " ".join(case["scenario"].split())[:300])
    body.setdefault("reference", reference)
    body.setdefault("channel", "web_form")
    body.setdefault("raw_input_id", f"raw-{reference}")
    body.setdefault("received_at", case.get("received_at", received_at))
    return ConcernReceivedPayload.model_validate(body)


def load_scenarios() -> list[Scenario]:
    """Every case of every table in tests/routing/scenarios."""
    scenarios = []
    for table in sorted(SCENARIOS.glob("*.yaml")):
        data = yaml.safe_load(table.read_text(encoding="utf-8"))
        for number, case in enumerate(data["cases"], start=1):
            reference = f"SC-{table.stem[:2]}-{number:03d}"
            scenarios.append(
                Scenario(
                    name=f"{table.stem}#{number}",
                    policy_path=REPO / data["policy"],
                    concern=_concern(
                        case, reference=reference, received_at=data["received_at"], risk=data.get("immediate_risk")
                    ),
                    expect=case["expect"],
                )
            )
    return scenarios


ALL = load_scenarios()


def assert_as_expected(outcome: dict[str, Any], expect: dict[str, Any], *, scenario: str) -> None:
    """Compare a decision, in the `route` command's JSON shape, with a table row."""
    told = {r["person_id"] for r in outcome["recipients"]}
    problems = []
    if sorted(outcome["rule_ids"]) != sorted(expect["rules"]):
        problems.append(f"rules {outcome['rule_ids']} != {expect['rules']}")
    for key in ("category", "urgency", "parents"):
        if outcome[key] != expect[key]:
            problems.append(f"{key} {outcome[key]!r} != {expect[key]!r}")
    if sorted(outcome["notify"]) != sorted(expect["notify"]):
        problems.append(f"notify {outcome['notify']} != {expect['notify']}")
    if not set(expect.get("told", [])) <= told:
        problems.append(f"told {sorted(told)} lacks {sorted(set(expect['told']) - told)}")
    if told & set(expect.get("not_told", [])):
        problems.append(f"told {sorted(told & set(expect['not_told']))}, who must not be")
    kinds = sorted(d["kind"] for d in outcome["deadlines"])
    if "deadlines" in expect and kinds != sorted(expect["deadlines"]):
        problems.append(f"deadlines {kinds} != {sorted(expect['deadlines'])}")
    due = {d["kind"]: datetime.fromisoformat(d["due_at"]) for d in outcome["deadlines"]}
    for kind, when in expect.get("due", {}).items():
        if due.get(kind) != datetime.fromisoformat(when):
            problems.append(f"{kind} due {due.get(kind)} != {when}")
    for key in ("subjects", "possible_subjects"):
        if key in expect:
            found = sorted(p if isinstance(p, str) else p["person_id"] for p in outcome[key])
            if found != sorted(expect[key]):
                problems.append(f"{key} {found} != {sorted(expect[key])}")
    if outcome["subject_to_confirm"] != expect.get("subject_to_confirm", False):
        problems.append(f"subject_to_confirm is {outcome['subject_to_confirm']}")
    if outcome["formal_record_required"] != expect.get("formal_record", False):
        problems.append(f"formal_record_required is {outcome['formal_record_required']}")
    assert not problems, f"{scenario}: " + "; ".join(problems)


@pytest.fixture(scope="module")
def policies() -> dict[Path, Policy]:
    return {path: load_policy(path) for path in {s.policy_path for s in ALL}}


def test_the_table_is_big_enough_and_cites_the_policy() -> None:
    assert len(ALL) >= 40
    tables = [yaml.safe_load(t.read_text(encoding="utf-8")) for t in SCENARIOS.glob("*.yaml")]
    for case in (case for table in tables for case in table["cases"]):
        cited = case["scenario"][0].isdigit() or case["scenario"].startswith("Floor") or case.get("source")
        assert cited, case["scenario"]


def test_the_cases_written_from_the_policy_and_guidance_each_quote_their_source() -> None:
    table = yaml.safe_load((SCENARIOS / "06-from-the-policy-and-guidance.yaml").read_text(encoding="utf-8"))
    assert len(table["cases"]) >= 40
    for case in table["cases"]:
        assert case["source"].startswith(("St Mark's", "KCSIE", "WT", "UKCIS")), case["scenario"]


@pytest.mark.parametrize("scenario", ALL, ids=[s.name for s in ALL])
def test_decide_follows_the_policy(scenario: Scenario, policies: dict[Path, Policy]) -> None:
    decision = decide(scenario.concern, policies[scenario.policy_path])
    assert isinstance(decision, Decision)
    assert_as_expected(decision.summary(), scenario.expect, scenario=scenario.concern.summary)


def test_the_route_command_agrees_for_the_whole_table(tmp_path: Path) -> None:
    by_policy: dict[Path, list[Scenario]] = {}
    for scenario in ALL:
        by_policy.setdefault(scenario.policy_path, []).append(scenario)
    for policy_path, scenarios in by_policy.items():
        lines = "".join(s.concern.model_dump_json() + "\n" for s in scenarios)
        finished = subprocess.run(
            [sys.executable, "-m", "services.routing.cli", "route", "--policy", str(policy_path)],
            input=lines,
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "SAFEGUARD_CACHE_DIR": str(tmp_path)},
            timeout=60,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr
        outcomes = [json.loads(line) for line in finished.stdout.splitlines()]
        assert len(outcomes) == len(scenarios)
        for scenario, outcome in zip(scenarios, outcomes, strict=True):
            assert outcome["reference"] == scenario.concern.reference
            assert outcome["policy_version"] == 1
            assert_as_expected(outcome, scenario.expect, scenario=scenario.concern.summary)
