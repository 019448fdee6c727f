"""Notifications refuses to start without a kept signing key, unless told it is a development run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifications.settings import NotificationSettings
from services.notifications.wiring import MissingSigningKey, ack_links
from shared.settings import Settings


def test_without_a_key_the_service_refuses_to_start() -> None:
    with pytest.raises(MissingSigningKey, match="SAFEGUARD_SIGNING_KEY is unset"):
        ack_links(Settings(signing_key=None), NotificationSettings())


def test_a_development_run_may_start_with_a_key_that_dies_with_it() -> None:
    links = ack_links(Settings(signing_key=None), NotificationSettings(ephemeral_signing_key=True))
    assert links.token("n-1", person_id="p-1", now=datetime.now(UTC))


def test_the_kept_key_is_used_when_given() -> None:
    kept = ack_links(Settings(signing_key="kept-secret"), NotificationSettings())
    again = ack_links(Settings(signing_key="kept-secret"), NotificationSettings())
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert kept.token("n-1", person_id="p-1", now=now) == again.token("n-1", person_id="p-1", now=now)
