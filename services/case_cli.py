"""`safeguard case …`: an operator holding the operator key works a case for a named person of the school.

Each command signs a fresh assertion (shared/actor_tokens.py, issuer `operator`) for `--as PERSON_ID` and sends
it to routing over NATS request/reply as the `operator` identity. Routing looks the person's role up in the
school's policy; the operator cannot give anybody a role. The key is `<actor_keys_dir>/operator.key`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.contracts.envelope import utc_now
from shared.identities import OPERATOR, inbox_prefix
from shared.settings import Settings
from shared.subjects import Subjects

case_app = typer.Typer(help="Read and work a case as a named person of the school (needs the operator key).")

School = Annotated[str, typer.Option("--school", help="The school's id, e.g. st-marks.")]
Person = Annotated[str, typer.Option("--as", help="Your person id in the school's policy.")]
CaseId = Annotated[str, typer.Argument(help="The case id.")]


def signed_command(
    command: str, *, case_id: str, school_id: str, person_id: str, settings: Settings, **fields: Any
) -> dict[str, Any]:
    """The command routing expects: what is asked, and a fresh assertion of who asks."""
    key = load_or_create_issuer_key(Path(settings.actor_keys_dir), issuer=OPERATOR)
    assertion = issue(key, issuer=OPERATOR, person_id=person_id, school_id=school_id, now=utc_now())
    asked = {name: value for name, value in fields.items() if value is not None}
    return {"command": command, "case_id": case_id, "school_id": school_id, "assertion": assertion, **asked}


async def _request(settings: Settings, document: dict[str, Any]) -> dict[str, Any]:
    import nats

    credentials = settings.nats_credentials()
    options: dict[str, Any] = {"inbox_prefix": inbox_prefix(OPERATOR), "connect_timeout": 5}
    if credentials is not None:
        options["user"], options["password"] = credentials
    client = await nats.connect(settings.nats_url, **options)
    try:
        subject = Subjects.from_settings(settings).command("routing", "case")
        reply = await client.request(subject, json.dumps(document).encode(), timeout=15)
    finally:
        await client.close()
    return dict(json.loads(reply.data))


def _send(command: str, case_id: str, *, school: str, person: str, **fields: Any) -> None:
    settings = Settings()
    document = signed_command(command, case_id=case_id, school_id=school, person_id=person, settings=settings, **fields)
    reply = asyncio.run(_request(settings, document))
    typer.echo(json.dumps(reply, indent=2, ensure_ascii=False))
    if not reply.get("ok"):
        raise typer.Exit(1)


@case_app.command()
def show(case_id: CaseId, school: School, person: Person) -> None:
    """Print the case as it stands and its history."""
    _send("show", case_id, school=school, person=person)


@case_app.command()
def acknowledge(case_id: CaseId, school: School, person: Person) -> None:
    """Take the case on (stops its escalation)."""
    _send("acknowledge", case_id, school=school, person=person)


@case_app.command("record-action")
def record_action(
    case_id: CaseId,
    school: School,
    person: Person,
    action: Annotated[str, typer.Option(help="e.g. spoke_to_learner, parents_contacted, lado_referral")],
    details: Annotated[str, typer.Option(help="What was done.")] = "",
) -> None:
    """Record something done on the case."""
    _send("record_action", case_id, school=school, person=person, action=action, details=details)


@case_app.command("decide-parents")
def decide_parents(
    case_id: CaseId,
    school: School,
    person: Person,
    decision: Annotated[str, typer.Option(help="inform or withhold.")],
    reason: Annotated[str, typer.Option(help="Why, in words a DSL would use.")],
) -> None:
    """Decide whether parents or carers are told (or override triage's decision), with the reason."""
    _send("decide_parent_notification", case_id, school=school, person=person, decision=decision, reason=reason)


@case_app.command("inform-parents")
def inform_parents(
    case_id: CaseId,
    school: School,
    person: Person,
    name: Annotated[str, typer.Option(help="The parent or carer, for the case record (never in the message).")],
    relationship: Annotated[str, typer.Option(help="Who they are to the child, e.g. mother, father, carer.")],
    channel: Annotated[str, typer.Option(help="email or sms.")],
    address: Annotated[str, typer.Option(help="Their email address, or mobile number as +44 7700 900123.")],
) -> None:
    """Send a parent or carer the school's message (its policy's words and the reference, nothing else).

    Refused, with the reason recorded, unless the case's parents decision is inform and it is safe to tell them.
    """
    _send(
        "inform_parents",
        case_id,
        school=school,
        person=person,
        name=name,
        relationship=relationship,
        channel=channel,
        address=address,
    )


@case_app.command("record-decision")
def record_decision(
    case_id: CaseId,
    school: School,
    person: Person,
    kind: Annotated[str, typer.Option(help="refer, not_refer, staff_declaration, harm_threshold or other")],
    decision: Annotated[str, typer.Option(help="The decision.")],
    reasons: Annotated[str, typer.Option(help="Why.")],
    agency: Annotated[str | None, typer.Option(help="Who it was referred to, if anyone.")] = None,
) -> None:
    """Record a decision and its reasons (including a decision not to refer)."""
    _send(
        "record_decision",
        case_id,
        school=school,
        person=person,
        kind=kind,
        decision=decision,
        reasons=reasons,
        agency=agency,
    )


@case_app.command("record-outcome")
def record_outcome(
    case_id: CaseId,
    school: School,
    person: Person,
    outcome: Annotated[str, typer.Option(help="e.g. resolved_in_school")],
    summary: Annotated[str, typer.Option(help="The outcome in a sentence.")],
) -> None:
    """Record the outcome of the case."""
    _send("record_outcome", case_id, school=school, person=person, outcome=outcome, summary=summary)


@case_app.command()
def close(
    case_id: CaseId, school: School, person: Person, summary: Annotated[str, typer.Option(help="Why it closes.")]
) -> None:
    """Close the case (it needs an outcome first)."""
    _send("close", case_id, school=school, person=person, summary=summary)


@case_app.command("complete-investigation")
def complete_investigation(
    case_id: CaseId, school: School, person: Person, summary: Annotated[str, typer.Option(help="What was found.")]
) -> None:
    """Mark the investigation complete (a debrief may then be recorded)."""
    _send("complete_investigation", case_id, school=school, person=person, summary=summary)


def debrief_action(text: str) -> dict[str, str]:
    """`ID|OWNER|YYYY-MM-DD|what is to be done` as the command's action; BadParameter when malformed."""
    parts = text.split("|", 3)
    if len(parts) != 4 or not all(part.strip() for part in parts):
        raise typer.BadParameter(f"{text!r}: write an action as ID|OWNER|YYYY-MM-DD|what is to be done")
    action_id, owner, due_on, description = (part.strip() for part in parts)
    return {"action_id": action_id, "owner": owner, "due_on": due_on, "description": description}


@case_app.command("record-debrief")
def record_debrief(
    case_id: CaseId,
    school: School,
    person: Person,
    lessons: Annotated[str, typer.Option(help="Lessons learnt.")],
    policy_change: Annotated[list[str] | None, typer.Option(help="A change to the policy (repeatable).")] = None,
    curriculum_change: Annotated[list[str] | None, typer.Option(help="A curriculum change (repeatable).")] = None,
    action: Annotated[
        list[str] | None, typer.Option(help="ID|OWNER|YYYY-MM-DD|what is to be done (repeatable).")
    ] = None,
) -> None:
    """Record the debrief (policy section 7); each action's owner is reminded from its due date until done."""
    _send(
        "record_debrief",
        case_id,
        school=school,
        person=person,
        lessons_learnt=lessons,
        policy_changes=list(policy_change or []),
        curriculum_changes=list(curriculum_change or []),
        actions=[debrief_action(text) for text in action or []],
    )


@case_app.command("complete-action")
def complete_action(
    case_id: CaseId,
    school: School,
    person: Person,
    action: Annotated[str, typer.Option("--action", help="The debrief action's id.")],
    note: Annotated[str, typer.Option(help="How it was done.")] = "",
) -> None:
    """Mark one of the case's debrief actions done (its owner or a case manager); its reminders stop."""
    _send("complete_debrief_action", case_id, school=school, person=person, action_id=action, note=note)


@case_app.command("actions")
def actions(
    school: School,
    person: Person,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only actions past their due date.")] = False,
) -> None:
    """List the school's open debrief actions (yours only, unless you lead safeguarding) and its policy changes."""
    _send("debrief_actions", "", school=school, person=person, overdue=overdue or None)
