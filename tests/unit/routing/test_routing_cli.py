"""The `route` and `policy check` commands, through typer's runner and as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from services.routing.cli import register

REPO = Path(__file__).resolve().parents[3]
ST_MARKS = REPO / "deploy" / "policies" / "st-marks.yaml"
REQUIRED_KEYS = {"rule_ids", "category", "urgency", "notify", "parents", "deadlines", "policy_version"}


def concern_json(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reporter": {"role": "parent_carer"},
        "people": [{"role": "learner", "involvement": "subject", "age": 10}],
        "kind": "online_bullying",
        "immediate_risk": "no",
        "summary": "A made-up concern",
        "reference": "SG-CLI-1",
        "channel": "web_form",
        "raw_input_id": "raw-1",
        "received_at": "2024-03-05T10:15:00Z",
    }
    body.update(fields)
    return body


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke a throwaway app carrying only routing's commands."""
    monkeypatch.setenv("SAFEGUARD_CACHE_DIR", str(tmp_path / "cache"))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: str, stdin: str = "") -> Any:
        return runner.invoke(app, list(args), input=stdin)

    return invoke


def test_route_decides_one_concern(cli: Any) -> None:
    result = cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json()))
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    decision = json.loads(line)
    assert decision.keys() >= REQUIRED_KEYS
    assert decision["category"] == "online_bullying"
    assert decision["notify"] == ["designated_safeguarding_lead", "pastoral_lead"]
    assert decision["parents"] == "inform"
    assert decision["policy_version"] == 1
    assert decision["policy_review_overdue"] is True
    assert decision["deadlines"][0]["kind"] == "acknowledge"


def test_route_reads_a_concern_spread_over_lines(cli: Any) -> None:
    result = cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json(), indent=2))
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1


def test_route_decides_json_lines_one_line_each_in_order(cli: Any) -> None:
    lines = "\n".join(json.dumps(concern_json(reference=f"SG-CLI-{n}")) for n in range(5)) + "\n\n"
    result = cli("route", "--policy", str(ST_MARKS), stdin=lines)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["reference"] for line in result.stdout.splitlines()] == [f"SG-CLI-{n}" for n in range(5)]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        pytest.param("", "no concern on stdin", id="nothing"),
        pytest.param('{"kind": "online_bullying"}\n{oops\n', "line 2: not JSON", id="broken json line"),
        pytest.param("[1, 2]", "line 1: a concern is a JSON object, not list", id="array"),
        pytest.param(json.dumps(concern_json(kind="Bad Kind")), "kind: String should match pattern", id="bad kind"),
        pytest.param(
            json.dumps({k: v for k, v in concern_json().items() if k != "received_at"}),
            "received_at: Field required",
            id="no received_at",
        ),
    ],
)
def test_route_refuses_an_invalid_concern_with_exit_2(cli: Any, stdin: str, message: str) -> None:
    result = cli("route", "--policy", str(ST_MARKS), stdin=stdin)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_route_refuses_an_invalid_policy_with_exit_2(cli: Any, tmp_path: Path) -> None:
    data = yaml.safe_load(ST_MARKS.read_text(encoding="utf-8"))
    data["people"] = [p for p in data["people"] if p["id"] != "s-bird"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = cli("route", "--policy", str(broken), stdin=json.dumps(concern_json()))
    assert result.exit_code == 2
    assert "invalid policy" in result.stderr and "designated_safeguarding_lead" in result.stderr
    missing = cli("route", "--policy", str(tmp_path / "missing.yaml"), stdin=json.dumps(concern_json()))
    assert missing.exit_code == 2
    assert "cannot read the policy file" in missing.stderr


def test_route_sends_outside_and_alerts_when_nobody_inside_can_be_told(cli: Any) -> None:
    people_in_file = yaml.safe_load(ST_MARKS.read_text(encoding="utf-8"))["people"]
    inside = [p["id"] for p in people_in_file if not p.get("external")]
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": pid} for pid in inside]
    result = cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json(people=people)))
    assert result.exit_code == 0, result.output
    [decision] = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["person_id"] for r in decision["recipients"]} == {p["id"] for p in people_in_file if p.get("external")}
    assert decision["alerts"] and decision["alerts"][0].startswith("error: nobody inside the school")
    assert "error: nobody inside the school can safely be told about concern SG-CLI-1" in result.stderr


def test_route_still_exits_0_and_raises_the_alert_when_even_the_outside_people_are_subjects(cli: Any) -> None:
    ids = [p["id"] for p in yaml.safe_load(ST_MARKS.read_text(encoding="utf-8"))["people"]]
    people = [{"role": "staff", "involvement": "alleged_perpetrator", "person_id": pid} for pid in ids]
    result = cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json(people=people)))
    assert result.exit_code == 0, result.output
    [decision] = [json.loads(line) for line in result.stdout.splitlines()]
    assert decision["recipients"] == []
    assert "call the LADO now" in result.stderr


def test_policy_check_lists_rules_and_warns_that_the_review_is_overdue(cli: Any) -> None:
    result = cli("policy", "check", str(ST_MARKS))
    assert result.exit_code == 0, result.output
    assert "valid policy for St Mark's CEP School (st-marks), version 1" in result.stdout
    assert "staff-personal-account-contact (section 4.2)" in result.stdout
    assert "warning: the policy was due for review by 2022-10-31" in result.stdout
    assert cli("policy", "check", "--strict", str(ST_MARKS)).exit_code == 1


def test_policy_check_refuses_an_invalid_file_with_exit_2(cli: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: one\n", encoding="utf-8")
    result = cli("policy", "check", str(broken))
    assert result.exit_code == 2
    assert "version: Input should be a valid integer" in result.stderr


@pytest.mark.parametrize(
    "placeholder", ["{category}", "{learner_name}", "{summary}", "{recipient.name}", "{reference!r}"]
)
def test_policy_check_refuses_a_parent_message_reaching_beyond_school_reference_and_contact(
    cli: Any, tmp_path: Path, placeholder: str
) -> None:
    document = yaml.safe_load(ST_MARKS.read_text(encoding="utf-8"))
    document["notifications"]["parent_message"]["sms"] = f"About {placeholder}: call us, ref {{reference}}"
    nosy = tmp_path / "nosy.yaml"
    nosy.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = cli("policy", "check", str(nosy))
    assert result.exit_code == 2, result.output
    assert "notifications.parent_message.sms" in result.stderr
    assert "['contact', 'reference', 'school_name']" in result.stderr or "plain name" in result.stderr


def test_route_remembers_bank_holidays_between_runs(cli: Any, tmp_path: Path) -> None:
    assert cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json())).exit_code == 0
    remembered = json.loads((tmp_path / "cache" / "bank-holidays-england-and-wales.json").read_text())
    assert "2024-12-25" in remembered["years"]["2024"]
    (tmp_path / "cache" / "bank-holidays-england-and-wales.json").write_text("not json")
    assert cli("route", "--policy", str(ST_MARKS), stdin=json.dumps(concern_json())).exit_code == 0


def test_route_keeps_the_validated_policy_and_notices_an_edit(cli: Any, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = ST_MARKS.read_text(encoding="utf-8")
    policy.write_text(text, encoding="utf-8")

    def routed_under_version() -> int:
        result = cli("route", "--policy", str(policy), stdin=json.dumps(concern_json()))
        assert result.exit_code == 0, result.output
        return int(json.loads(result.stdout)["policy_version"])

    assert routed_under_version() == 1
    assert list((tmp_path / "cache" / "policies").glob("*.pickle"))
    assert routed_under_version() == 1
    policy.write_text(text.replace("\nversion: 1\n", "\nversion: 2\n"), encoding="utf-8")
    assert routed_under_version() == 2


def _run(*args: str, stdin: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SAFEGUARD_CACHE_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )


def test_register_works_on_any_typer_app_in_a_fresh_process(tmp_path: Path) -> None:
    program = (
        "import sys, typer\n"
        "from services.routing.cli import register\n"
        "app = typer.Typer()\n"
        "register(app)\n"
        "app(['route', '--policy', sys.argv[1]], standalone_mode=False)\n"
        "heavy = [m for m in ('faststream', 'sqlalchemy', 'fastapi') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = _run("-c", program, str(ST_MARKS), stdin=json.dumps(concern_json()), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["category"] == "online_bullying"


def test_the_module_runs_on_its_own(tmp_path: Path) -> None:
    done = _run(
        "-m", "services.routing.cli", "route", "--policy", str(ST_MARKS),
        stdin=json.dumps(concern_json(immediate_risk=True)), tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["urgency"] == "immediate"
    bad = _run("-m", "services.routing.cli", "route", "--policy", str(ST_MARKS), stdin="{", tmp_path=tmp_path)
    assert bad.returncode == 2
    assert "not JSON" in bad.stderr


def test_importing_the_commands_loads_nothing_heavy(tmp_path: Path) -> None:
    program = (
        "import sys, services.routing.cli\n"
        "loaded = [m for m in ('services.routing.policy', 'pydantic', 'yaml', 'holidays') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = _run("-c", program, stdin="", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_console_script_answers_route_without_loading_typer(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from services.entry import main\n"
        f"sys.argv = ['safeguard', 'route', '--policy', {str(ST_MARKS)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print(f'exit={done.code} typer={\"typer\" in sys.modules}', file=sys.stderr)\n"
    )
    concern = json.dumps(
        {
            "reference": "SG-E-1",
            "channel": "json_api",
            "raw_input_id": "r-1",
            "received_at": "2024-03-05T10:15:00Z",
            "reporter": {"role": "staff"},
            "people": [{"role": "learner", "involvement": "victim"}],
            "kind": "online_bullying",
            "summary": "Console script check",
        }
    )
    env = {**os.environ, "SAFEGUARD_CACHE_DIR": str(tmp_path)}
    answered = subprocess.run(
        [sys.executable, "-c", script],
        input=concern,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    refused = subprocess.run(
        [sys.executable, "-c", script],
        input="{",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert "exit=0 typer=False" in answered.stderr
    assert json.loads(answered.stdout)["reference"] == "SG-E-1"
    assert "exit=2 typer=False" in refused.stderr and "not JSON" in refused.stderr


def test_policy_check_refuses_a_policy_that_lets_immediate_wait_a_week_naming_the_line(
    cli: Any, tmp_path: Path
) -> None:
    slow = tmp_path / "slow.yaml"
    text = ST_MARKS.read_text(encoding="utf-8").replace("immediate: {minutes: 15}", "immediate: {working_days: 5}")
    slow.write_text(text.replace("high: {hours: 1}", "high: {hours: 2}"), encoding="utf-8")
    line = next(n for n, one in enumerate(text.splitlines(), start=1) if "working_days: 5" in one)
    result = cli("policy", "check", str(slow))
    assert result.exit_code == 2
    assert f"refused: {slow}: line {line}: acknowledge_within.immediate: 5 working days is slower" in result.stderr
    assert f"line {line + 1}: acknowledge_within.high: 2 hours is slower than the floor of 60" in result.stderr


def test_a_slow_policy_forced_past_the_check_is_capped_at_run_time(cli: Any, tmp_path: Path) -> None:
    slow = tmp_path / "slow.yaml"
    text = ST_MARKS.read_text(encoding="utf-8").replace("immediate: {minutes: 15}", "immediate: {working_days: 5}")
    slow.write_text(text, encoding="utf-8")
    saturday_night = "2024-03-09T23:30:00Z"
    at_risk = concern_json(immediate_risk="yes", received_at=saturday_night)
    result = cli("route", "--policy", str(slow), stdin=json.dumps(at_risk))
    assert result.exit_code == 0, result.output
    [decision] = [json.loads(line) for line in result.stdout.splitlines()]
    acknowledge = next(d for d in decision["deadlines"] if d["kind"] == "acknowledge")
    assert decision["urgency"] == "immediate"
    assert acknowledge["due_at"] == "2024-03-09T23:45:00Z"
    assert acknowledge["description"] == "Acknowledge the concern within 15 minutes."
