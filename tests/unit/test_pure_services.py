"""Pure logic of intake, notifications and audit: references, lock-screen text, the hash chain."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.audit.domain import GENESIS, ChainEntry, entry_hash, verify_chain
from services.intake.domain import new_reference, reporter_actor
from services.notifications.domain import render
from shared.contracts.concern import Channel, ConcernReport
from shared.contracts.events import NotificationRequestedPayload, PersonRef
from tests.support.factories import report_json


def test_a_reference_is_readable_aloud_and_carries_the_year() -> None:
    reference = new_reference(received_at=datetime(2026, 3, 1, tzinfo=UTC))
    assert re.fullmatch(r"SG-2026-[0-9A-HJKMNP-TV-Z]{8}", reference)
    assert len({new_reference(received_at=datetime(2026, 3, 1, tzinfo=UTC)) for _ in range(1000)}) == 1000


def test_an_anonymous_reporter_is_named_by_channel_only() -> None:
    report = ConcernReport.model_validate(report_json(reporter={"anonymous": True}))
    assert reporter_actor(report, channel=Channel.web_form).model_dump() == {
        "id": "anonymous:web_form",
        "role": "anonymous",
    }
    with pytest.raises(ValueError, match="anonymous"):
        ConcernReport.model_validate(report_json(reporter={"anonymous": True, "name": "Someone"}))


@pytest.mark.parametrize("urgency", ["immediate", "high", "medium", "low"])
def test_a_notification_never_carries_a_name_or_the_concern_text(urgency: str) -> None:
    request = NotificationRequestedPayload(
        notification_id="n-1",
        case_id="c-1",
        reference="SG-2026-ABCDEFGH",
        recipient=PersonRef(person_id="s-bird", name="Mr S Bird", role="designated_safeguarding_lead"),
        channel="push",
        address="sub-1",
        urgency=urgency,
        reason="rule x",
    )
    message = render(request, console_url="https://console.example", ack_token="t0k3n")
    text = f"{message.title} {message.body}"
    assert "SG-2026-ABCDEFGH" in text
    for secret in ("Learner A", "Hurtful", "group chat", "Bird"):
        assert secret not in text
    assert message.ack_url == "https://console.example/api/v1/notifications/n-1/ack?token=t0k3n"


def _chain(length: int) -> list[ChainEntry]:
    entries, previous = [], GENESIS
    for sequence in range(1, length + 1):
        event = {"event_id": str(sequence), "payload": {"n": sequence}}
        digest = entry_hash(previous_hash=previous, school_sequence=sequence, event=event)
        entries.append(ChainEntry(sequence, event, previous, digest))
        previous = digest
    return entries


def test_an_intact_chain_verifies() -> None:
    assert verify_chain(_chain(5)) == []


def test_an_altered_entry_is_found() -> None:
    chain = _chain(5)
    chain[2] = ChainEntry(3, {"event_id": "3", "payload": {"n": 999}}, chain[2].previous_hash, chain[2].entry_hash)
    assert [(b.school_sequence, b.problem) for b in verify_chain(chain)] == [
        (3, "entry hash does not match its content")
    ]


def test_a_removed_entry_is_found() -> None:
    chain = _chain(5)
    del chain[1]
    problems = verify_chain(chain)
    assert problems and problems[0].school_sequence == 3
