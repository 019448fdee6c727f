"""`safeguard up` runs a local SMTP server and SMS provider only where nothing real is configured."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from services.notifications.stand_ins import add_stand_ins, command_with_stand_ins


def test_unconfigured_mail_and_sms_get_local_stand_ins(tmp_path: Path) -> None:
    environment: dict[str, str] = {"SAFEGUARD_NOTIFICATIONS_HTTP_PORT": "18081"}
    names = add_stand_ins(environment, data_dir=tmp_path)
    assert names == ("local-mail", "local-sms")
    assert environment["SAFEGUARD_SMTP_HOST"] == "127.0.0.1" and environment["SAFEGUARD_SMTP_SECURITY"] == "none"
    assert environment["SAFEGUARD_SMS_BASE_URL"] == f"http://127.0.0.1:{environment['SAFEGUARD_SMS_PORT']}"
    assert environment["SAFEGUARD_SMS_SINK_FILE"] == str(tmp_path.absolute() / "sms.jsonl")
    # the local provider reports each message's delivery to notifications' status callback
    assert environment["SAFEGUARD_SMS_STATUS_CALLBACK_URL"] == "http://127.0.0.1:18081/api/v1/sms/status"
    command = command_with_stand_ins(lambda name: ["svc", name])
    assert command("local-mail") == [sys.executable, "-m", "services.notifications.local_mail"]
    assert command("audit") == ["svc", "audit"]


def test_a_configured_mail_server_and_sms_provider_are_left_alone(tmp_path: Path) -> None:
    environment = {"SAFEGUARD_SMTP_HOST": "smtp.example.org", "SAFEGUARD_SMS_BASE_URL": "https://sms.example.org"}
    assert add_stand_ins(environment, data_dir=tmp_path) == ()
    assert environment == {
        "SAFEGUARD_SMTP_HOST": "smtp.example.org",
        "SAFEGUARD_SMS_BASE_URL": "https://sms.example.org",
    }


def test_without_aiosmtpd_mail_falls_back_to_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "aiosmtpd" else real_find_spec(name))
    environment: dict[str, str] = {}
    assert add_stand_ins(environment, data_dir=tmp_path) == ("local-sms",)
    assert "SAFEGUARD_SMTP_HOST" not in environment
