"""The console's report form and commands as the services downstream read them (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.console.access import Principal
from services.console.commands import command_document
from services.console.device import _outcome, concern_json, intake_key
from services.routing.case.commands import RecordDebrief, parse_command
from shared.contracts.concern import ConcernReport

TEACHER = Principal(
    account_id="acc-1",
    username="t@example.org",
    person_id="teacher-1",
    role="staff",
    school_id="st-marks",
    school_ids=frozenset({"st-marks"}),
)


def test_a_console_report_is_a_valid_concern_from_the_signed_in_person() -> None:
    form = {
        "kind": "online_bullying",
        "summary": " Messages ",
        "about": "learner",
        "involvement": "victim",
        "immediate_risk": "not_sure",
        "reporter": "someone else",
    }
    report = ConcernReport.model_validate(concern_json(TEACHER, form))
    assert report.reporter.person_id == "teacher-1" and report.reporter.role == "staff"
    assert report.summary == "Messages" and report.immediate_risk == "not_sure"
    head = Principal(**{**TEACHER.__dict__, "role": "headteacher"})
    assert concern_json(head, form)["reporter"]["role"] == "headteacher"


def test_idempotency_keys_are_the_account_s_own_and_intake_s_answers_map_to_retry_or_refused() -> None:
    assert intake_key(TEACHER, "k" * 20) == f"console-acc-1-{'k' * 20}"
    assert [_outcome(s) for s in (202, 200, 422, 404, 429, 500, 503)] == [200, 200, 409, 409, 503, 503, 503]


def test_the_debrief_form_s_lines_become_routing_s_lists() -> None:
    form = {"lessons_learnt": "Teach reporting", "policy_changes": "Name a lead\n\n  Review yearly \n", "x": "y"}
    document = command_document(
        "record_debrief",
        case_id="c-1",
        school_id="st-marks",
        principal=TEACHER,
        form=form,
        key=Ed25519PrivateKey.generate(),
        now=datetime.now(UTC),
    )
    assert document["policy_changes"] == ["Name a lead", "Review yearly"] and "curriculum_changes" not in document
    assert "x" not in document
    command = parse_command(
        {**{k: v for k, v in document.items() if k != "assertion"}, "actor": {"id": "teacher-1", "role": "staff"}}
    )
    assert isinstance(command, RecordDebrief) and command.lessons_learnt == "Teach reporting"
