"""Acknowledgement-link tokens: bound to one notification and one person, and dead after their lifetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.links import AckLinks

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINKS = AckLinks(b"k" * 32)
TOKEN = LINKS.token("n-1", person_id="p-dsl", now=SENT)


@pytest.mark.parametrize(
    ("notification_id", "person_id", "token", "checked_at", "state"),
    [
        ("n-1", "p-dsl", TOKEN, SENT, "valid"),
        ("n-1", "p-dsl", TOKEN, SENT + timedelta(days=6, hours=23), "valid"),
        ("n-1", "p-dsl", TOKEN, SENT + timedelta(days=7, seconds=1), "expired"),
        ("n-2", "p-dsl", TOKEN, SENT, "invalid"),
        ("n-1", "p-deputy", TOKEN, SENT, "invalid"),
        ("n-1", "p-dsl", "zzzzzz" + TOKEN[TOKEN.index(".") :], SENT, "invalid"),
        ("n-1", "p-dsl", "not-a-token", SENT, "invalid"),
    ],
)
def test_a_token_fits_only_its_notification_and_person_until_it_expires(
    notification_id: str, person_id: str, token: str, checked_at: datetime, state: str
) -> None:
    assert LINKS.check(notification_id, token, person_id=person_id, now=checked_at) == state


def test_a_token_from_another_key_is_invalid_and_a_token_is_short_enough_for_an_sms() -> None:
    assert AckLinks(b"other").check("n-1", TOKEN, person_id="p-dsl", now=SENT) == "invalid"
    assert len(TOKEN) <= 30 and TOKEN.replace(".", "").replace("-", "").replace("_", "").isalnum()


def test_the_lifetime_is_configurable_and_the_page_check_belongs_to_one_link() -> None:
    short_lived = AckLinks(b"k" * 32, lifetime=timedelta(hours=1))
    token = short_lived.token("n-1", person_id="p-dsl", now=SENT)
    assert short_lived.check("n-1", token, person_id="p-dsl", now=SENT + timedelta(hours=2)) == "expired"
    assert LINKS.page_check("n-1", TOKEN) != LINKS.page_check("n-2", TOKEN)
    assert LINKS.page_check("n-1", TOKEN) != LINKS.page_check("n-1", token)
