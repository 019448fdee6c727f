"""The NATS permission matrix, read as data: least rights per service, no destructive JetStream API."""

from __future__ import annotations

import json

import pytest

from shared.identities import ADMIN, OPERATOR, SERVICE_NAMES, generate_passwords, identities, render_server_config
from shared.subjects import Subjects

SUBJECTS = Subjects(root="sg", stream="SAFEGUARD_EVENTS")
MATRIX = identities(SUBJECTS)
DEAD = "sg.*.ops.dead_lettered"  # every service announces the dead letters it parks
DESTRUCTIVE = ("STREAM.DELETE", "STREAM.PURGE", "STREAM.UPDATE", "STREAM.CREATE", "CONSUMER.DELETE", "MSG.DELETE")


@pytest.mark.parametrize("name", [*SERVICE_NAMES, OPERATOR])
def test_no_identity_but_the_admin_may_touch_stream_or_consumer_lifecycles(name: str) -> None:
    rights = MATRIX[name].publish
    assert not [right for right in rights if any(api in right for api in DESTRUCTIVE)]
    assert ">" not in rights and "$JS.API.>" not in rights and "$JS.API.STREAM.MSG.GET.SAFEGUARD_EVENTS" not in rights


@pytest.mark.parametrize(
    ("name", "events"),
    [
        ("intake", ["sg.*.concern.received", "sg.*.intake.quarantined", DEAD]),
        (
            "routing",
            ["sg.*.case.*", "sg.*.deadline.*", "sg.*.notification.requested", "sg.*.policy.*", "sg.*.debrief.*", DEAD],
        ),
        (
            "notifications",
            [
                "sg.*.notification.sent",
                "sg.*.notification.delivered",
                "sg.*.notification.failed",
                "sg.*.notification.acknowledged",
                DEAD,
            ],
        ),
        ("audit", ["sg.*.record.viewed", "sg.*.key.shredded", DEAD, "sg-audit.*.ledger.checkpointed"]),
        ("console", ["sg.*.record.viewed", "sg.*.account.changed", DEAD]),
    ],
)
def test_each_service_publishes_exactly_its_own_events(name: str, events: list[str]) -> None:
    published = [right for right in MATRIX[name].publish if right.startswith(("sg.", "sg-audit."))]
    assert published == events


def test_a_consumer_may_be_created_only_with_its_own_filter() -> None:
    create = "$JS.API.CONSUMER.CREATE.SAFEGUARD_EVENTS"
    assert f"{create}.routing-concerns.sg.*.concern.received" in MATRIX["routing"].publish
    assert f"{create}.notifications-requests.sg.*.notification.requested" in MATRIX["notifications"].publish
    assert f"{create}.audit-ledger.sg.>" in MATRIX["audit"].publish
    assert f"{create}.console-read-model.sg.>" in MATRIX["console"].publish
    # Intake reads case events only, for the stage a reporter's status page shows.
    assert [right for right in MATRIX["intake"].publish if "CONSUMER.CREATE" in right] == [
        f"{create}.intake-receipts.sg.*.case.*"
    ]


def test_replies_go_to_an_inbox_only_their_identity_can_read() -> None:
    for name in SERVICE_NAMES:
        assert f"_INBOX.{name}.>" in MATRIX[name].subscribe
        assert "_INBOX.>" not in MATRIX[name].subscribe
    assert MATRIX["audit"].subscribe == ("_INBOX.audit.>", "sg-cmd.audit.>", "sg.>", "sg-dead.>")


def test_only_routing_answers_requests_and_only_the_console_and_the_operator_send_it_commands() -> None:
    answering = [name for name, identity in MATRIX.items() if identity.allow_responses]
    assert answering == ["routing", "notifications", "audit"]
    assert MATRIX[OPERATOR].publish == ("sg-cmd.routing.>",)
    assert "sg-cmd.routing.>" in MATRIX["routing"].subscribe
    senders = [name for name, identity in MATRIX.items() if "sg-cmd.routing.>" in identity.publish]
    assert senders == ["console", OPERATOR]
    # The console hears routing's answers on its own inbox, and nothing else live.
    assert MATRIX["console"].subscribe == ("_INBOX.console.>",)


def test_only_the_console_asks_audit_for_the_record() -> None:
    askers = [name for name, identity in MATRIX.items() if "sg-cmd.audit.>" in identity.publish]
    assert askers == ["console"]
    assert [name for name, identity in MATRIX.items() if "sg-cmd.audit.>" in identity.subscribe] == ["audit"]
    # Routing hears of reads only through its own durable consumer (break-glass alerts), never live.
    create = "$JS.API.CONSUMER.CREATE.SAFEGUARD_EVENTS"
    assert f"{create}.routing-break-glass.sg.*.record.viewed" in MATRIX["routing"].publish


def test_only_the_console_asks_notifications_to_subscribe_a_browser() -> None:
    askers = [name for name, identity in MATRIX.items() if "sg-cmd.notifications.>" in identity.publish]
    assert askers == ["console"]
    listeners = [name for name, identity in MATRIX.items() if "sg-cmd.notifications.>" in identity.subscribe]
    assert listeners == ["notifications"]
    assert SUBJECTS.notifications_push == "sg-cmd.notifications.push"
    # Notifications hears requests on its own command subjects and answers to the asker's inbox, nothing else live.
    assert MATRIX["notifications"].subscribe == ("_INBOX.notifications.>", "sg-cmd.notifications.>")
    assert not [right for right in MATRIX["notifications"].publish if right.startswith("sg-cmd.")]


def test_the_server_config_has_one_user_per_identity_and_no_anonymous_access() -> None:
    passwords = generate_passwords(list(MATRIX))
    config = json.loads(render_server_config(MATRIX, passwords=passwords))
    [account] = config["accounts"].values()
    assert account["jetstream"] == "enabled"
    assert {user["user"]: user["password"] for user in account["users"]} == passwords
    assert "no_auth_user" not in json.dumps(config)
    assert ADMIN in passwords and len(set(passwords.values())) == len(passwords)


def test_docs_security_shows_every_identitys_event_rights() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    for name in (*SERVICE_NAMES, OPERATOR, ADMIN):
        assert f"| `{name}` |" in page
        for right in MATRIX[name].publish:
            if right.startswith(("sg.", "sg-cmd.", "sg-audit.")):
                assert f"`{right}`" in page, (name, right)
