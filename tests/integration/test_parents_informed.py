"""A parent told in the school's own words, end to end: routing and notifications against real NATS and PostgreSQL,
the email received by a local SMTP server (aiosmtpd).

- On a case whose decision is inform, the DSL's inform_parents sends the parent one email: the school's words and
  the reference, and none of the concern, the people in it, the staff told, the category or the rules (marker
  strings are planted in every one); no link, nothing to acknowledge, no deadline. Redelivered five times, and
  the same signed command sent again: still one email.
- Refused, recorded as case.command_refused, and nothing sent: a concern about staff, a report that telling the
  parents could put the child at risk, triage's must-not-tell, and a policy without words for parents.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import nats
import pytest

from services.notifications import mailbox
from services.notifications.app import create_app
from services.notifications.local_mail import serve
from services.routing.app import RoutingService
from services.routing.policy.load import load_policy
from shared.actor_tokens import issue, load_or_create_issuer_key
from shared.settings import Settings
from shared.subjects import Subjects
from tests.conftest import REPO_ROOT
from tests.integration.test_timers import Clock, start, stop
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

POLICY = REPO_ROOT / "deploy" / "policies" / "st-marks.yaml"
# Planted in everything a parent must never see, so any of them reaching the email is caught.
MARKERS = {
    "summary": "MARKERSUMMARY Hurtful messages in the class chat",
    "details": "MARKERDETAILS more of what happened",
    "child": "Zedrick Markerchild",
    "other child": "Yolanda Markerpupil",
    "reporter": "Xavier Markerreporter",
    "parent's own name": "Wilhelmina Markerparent",
}
MOTHER = "mother.marker@example.org"
FATHER = "father.marker@example.org"


@dataclass
class Stack:
    settings: Settings
    clock: Clock
    routing: RoutingService
    mail: Path
    js: Any

    def mailed_to(self, address: str) -> list[mailbox.KeptMail]:
        return [m for m in mailbox.kept(self.mail) if m.to == address]


@asynccontextmanager
async def stack(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """Routing and notifications, email to a local SMTP server; the operator's key known to routing."""
    load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")  # routing reads the public key at start
    smtp = await serve(tmp_path / "smtp")
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.sockets[0].getsockname()[1]),
        "SMTP_SECURITY": "none",
        "DELIVERY_POLL_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(f"SAFEGUARD_{name}", value)
    _, notifications = create_app(settings.model_copy(update={"mail_sink_dir": str(tmp_path / "unused")}))
    clock = Clock()
    async with running(notifications), jetstream(settings) as (_, js):
        routing = await start(settings, clock)
        try:
            yield Stack(settings, clock, routing, tmp_path / "smtp", js)
        finally:
            await stop(routing)
    smtp.close()
    await smtp.wait_closed()


def signed(settings: Settings, clock: Clock, command: str, **fields: Any) -> dict[str, Any]:
    """A case command as the operator CLI signs it, asked by the DSL (a fresh assertion each time)."""
    key = load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")
    assertion = issue(key, issuer="operator", person_id="s-bird", school_id="st-marks", now=clock.now)
    return {"command": command, "school_id": "st-marks", "assertion": assertion, **fields}


async def ask(settings: Settings, document: dict[str, Any]) -> dict[str, Any]:
    client = await nats.connect(settings.nats_url)
    try:
        subject = Subjects.from_settings(settings).command("routing", "case")
        reply = await client.request(subject, json.dumps(document).encode(), timeout=15)
    finally:
        await client.close()
    return dict(json.loads(reply.data))


def inform(case_id: str, *, address: str = MOTHER, name: str = MARKERS["parent's own name"]) -> dict[str, Any]:
    return {"case_id": case_id, "name": name, "relationship": "mother", "channel": "email", "address": address}


async def triage_of(stack: Stack, concern: Any) -> Any:
    await publish_raw(stack.js, stack.settings, concern)
    found = await eventually(
        lambda: stream_events(stack.js, stack.settings, "case.triaged"),
        until=lambda events: any(e.payload.reference == concern.payload.reference for e in events),
        what="triage",
    )
    return next(e for e in found if e.payload.reference == concern.payload.reference)


def a_bullying_concern(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "reporter": {"role": "staff", "name": MARKERS["reporter"], "contact": "reporter.marker@example.org"},
        "people": [
            {"role": "learner", "involvement": "victim", "name": MARKERS["child"], "age": 12},
            {"role": "learner", "involvement": "alleged_perpetrator", "name": MARKERS["other child"], "age": 12},
        ],
        "summary": MARKERS["summary"],
        "details": MARKERS["details"],
        "immediate_risk": "no",
    }
    return concern_received(**{**fields, **overrides})


def staff_only_words(triaged: Any) -> list[str]:
    """Everything staff know about the case that a parent must not read: markers, staff names, category, rules."""
    policy = load_policy(POLICY)
    body = triaged.payload
    words = [*MARKERS.values(), body.category, body.category.replace("_", " "), *body.rule_ids, body.parents_reason]
    words += [person.name for person in policy.people]
    return [*words, "safeguarding", "Safeguarding", "concern", "http"]


async def test_a_parent_gets_one_email_in_the_schools_words_and_nothing_staff_only(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(settings, tmp_path, monkeypatch) as running_stack:
        triaged = await triage_of(running_stack, a_bullying_concern())
        assert triaged.payload.parents == "inform"
        case_id, reference = triaged.payload.case_id, triaged.payload.reference
        document = signed(settings, running_stack.clock, "inform_parents", **inform(case_id))
        answer = await ask(settings, document)
        assert answer["ok"] and answer["events"] == ["case.parents_informed", "notification.requested"], answer

        [email] = await eventually(lambda: _mail(running_stack, MOTHER), what="the parent's email")
        message = mailbox.read(email.path)
        html = message.get_body(preferencelist=("html",))
        everything = f"{message['Subject']}\n{mailbox.plain_text(message)}\n{html.get_content()}"  # type: ignore[union-attr]
        assert message["Subject"] == "A message from St Mark's CEP School"
        assert reference in mailbox.plain_text(message)
        assert "Please call the school office on 01632 960000" in mailbox.plain_text(message)
        for staff_only in staff_only_words(triaged):
            assert staff_only not in everything, staff_only
        assert mailbox.links(message) == []

        # Redelivered five times (the stream hands the same request over again): no second email.
        [request] = [
            e
            for e in await stream_events(running_stack.js, settings, "notification.requested")
            if e.payload.recipient.role == "parent_carer"
        ]
        assert request.payload.escalation_rung == 0 and request.payload.parent_message is not None
        for _ in range(5):
            await publish_raw(running_stack.js, settings, request, msg_id=str(uuid.uuid4()))
        again = await ask(settings, document)  # the same signed command, sent again
        assert again["ok"] is False and again["code"] == "replayed"
        fresh = signed(settings, running_stack.clock, "inform_parents", **inform(case_id, address=MOTHER.upper()))
        twice = await ask(settings, fresh)  # a fresh command to the same address
        assert twice["ok"] is False and "already went to this email address" in twice["error"]
        # A second parent, asked for after all that, is told: by then every repeat has been seen to.
        other = signed(settings, running_stack.clock, "inform_parents", **inform(case_id, address=FATHER))
        assert (await ask(settings, other))["ok"]
        await eventually(lambda: _mail(running_stack, FATHER), what="the second parent's email")
        assert len(running_stack.mailed_to(MOTHER)) == 1

        sent = await eventually(
            lambda: stream_events(running_stack.js, settings, "notification.sent"),
            until=lambda events: any(e.payload.notification_id == request.payload.notification_id for e in events),
            what="notification.sent for the parent",
        )
        assert [e.payload.notification_id for e in sent].count(request.payload.notification_id) == 1
        deadlines = await stream_events(running_stack.js, settings, "deadline.set")
        assert all(d.causation_id != request.event_id for d in deadlines)  # nothing waits on a parent


async def _mail(stack: Stack, address: str) -> list[mailbox.KeptMail]:
    return stack.mailed_to(address)


OVERRIDE = {"decision": "inform", "reason": "The DSL would like the family to know"}
# (what the concern is, the concern, the code the refusal is recorded under, words in the reply)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "a concern about staff, even after the DSL decides to inform",
        dict(
            kind="staff_social_media_misuse",
            people=[{"role": "staff", "involvement": "alleged_perpetrator", "name": "Vernon Markerteacher"}],
        ),
        "about_staff",
        "never messages parents about an allegation against an adult",
    ),
    (
        "a report that telling the parents could put the child at risk, even after a DSL override",
        dict(telling_parents_may_increase_risk=True),
        "child_at_risk",
        "could put the child at greater risk",
    ),
    (
        "triage's must-not-tell (a data breach: the headteacher decides what families hear), even after an override",
        dict(kind="staff_shared_learner_information"),
        "must_not_tell",
        "must not be told by the system",
    ),
]


async def refusals(stack: Stack, case_id: str) -> list[Any]:
    return [
        e for e in await stream_events(stack.js, stack.settings, "case.command_refused") if e.aggregate_id == case_id
    ]


async def test_no_message_about_staff_or_when_telling_could_harm_and_the_refusal_is_in_the_record(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(settings, tmp_path, monkeypatch) as running_stack:
        for what, concern, code, words in REFUSED:
            triaged = await triage_of(running_stack, a_bullying_concern(**concern))
            assert triaged.payload.parents == "must_not_tell", what
            case_id = triaged.payload.case_id
            overridden = await ask(
                settings,
                signed(settings, running_stack.clock, "decide_parent_notification", case_id=case_id, **OVERRIDE),
            )
            assert overridden["ok"], (what, overridden)
            answer = await ask(settings, signed(settings, running_stack.clock, "inform_parents", **inform(case_id)))
            assert answer["ok"] is False and answer["code"] == "refused" and words in answer["error"], (what, answer)
            [recorded] = await eventually(partial(refusals, running_stack, case_id), what=f"the refusal of {what}")
            body = recorded.payload
            assert (body.command, body.code, body.person_id, body.issuer) == (
                "inform_parents",
                code,
                "s-bird",
                "operator",
            )
            assert MOTHER not in body.model_dump_json() and "Markerparent" not in body.model_dump_json()
        requests = await stream_events(running_stack.js, settings, "notification.requested")
        assert [r for r in requests if r.payload.recipient.role == "parent_carer"] == []
        assert running_stack.mailed_to(MOTHER) == []


async def test_no_message_when_the_policy_has_no_words_for_parents(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    text = POLICY.read_text()
    start_at, end_at = text.index("  parent_message:\n"), text.index("# A concern no rule below matches")
    (folder / "st-marks.yaml").write_text(text[:start_at] + "\n" + text[end_at:])
    settings = settings.model_copy(update={"policy_dir": str(folder)})
    load_or_create_issuer_key(settings.actor_keys_dir, issuer="operator")
    clock = Clock()
    routing = await start(settings, clock)
    try:
        async with jetstream(settings) as (_, js):
            quiet = Stack(settings, clock, routing, tmp_path / "no-mail", js)
            triaged = await triage_of(quiet, a_bullying_concern())
            assert triaged.payload.parents == "inform"
            case_id = triaged.payload.case_id
            answer = await ask(settings, signed(settings, clock, "inform_parents", **inform(case_id)))
            assert answer["ok"] is False and "has no words for parents" in answer["error"], answer
            [recorded] = await eventually(lambda: refusals(quiet, case_id), what="the refusal")
            assert recorded.payload.code == "no_parent_message"
            requests = await stream_events(js, settings, "notification.requested")
            assert [r for r in requests if r.payload.recipient.role == "parent_carer"] == []
    finally:
        await stop(routing)
