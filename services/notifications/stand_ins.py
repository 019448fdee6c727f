"""`safeguard up`'s local stand-ins for the outside world: an SMTP server and an SMS provider on loopback.

Each runs only when the operator has not configured the real thing (SAFEGUARD_SMTP_HOST, SAFEGUARD_SMS_BASE_URL),
and points the notifications service at itself, so a newcomer sees every alert: `safeguard mail list`, and the
SMS file in the data folder.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path

from services.launcher.ports import free_port

COMMANDS = {"local-mail": "services.notifications.local_mail", "local-sms": "services.notifications.local_sms"}


def add_stand_ins(environment: MutableMapping[str, str], *, data_dir: Path) -> tuple[str, ...]:
    """Point the environment at local stand-ins where nothing real is configured; their process names."""
    names: list[str] = []
    # Without aiosmtpd (installed with the `embedded` extra) mail still lands in the mail folder, written directly.
    if not environment.get("SAFEGUARD_SMTP_HOST") and importlib.util.find_spec("aiosmtpd") is not None:
        environment.update(
            {
                "SAFEGUARD_SMTP_HOST": "127.0.0.1",
                "SAFEGUARD_SMTP_PORT": str(free_port()),
                "SAFEGUARD_SMTP_SECURITY": "none",
            }
        )
        names.append("local-mail")
    if not environment.get("SAFEGUARD_SMS_BASE_URL"):
        port = free_port()
        environment.update(
            {
                "SAFEGUARD_SMS_PORT": str(port),
                "SAFEGUARD_SMS_BASE_URL": f"http://127.0.0.1:{port}",
                "SAFEGUARD_SMS_ACCOUNT_SID": "AC-local",
                "SAFEGUARD_SMS_AUTH_TOKEN": secrets.token_urlsafe(16),
                "SAFEGUARD_SMS_SINK_FILE": str(data_dir.absolute() / "sms.jsonl"),
            }
        )
        notifications_port = environment.get("SAFEGUARD_NOTIFICATIONS_HTTP_PORT", "8081")
        callback = f"http://127.0.0.1:{notifications_port}/api/v1/sms/status"
        environment.setdefault("SAFEGUARD_SMS_STATUS_CALLBACK_URL", callback)
        names.append("local-sms")
    return tuple(names)


def command_with_stand_ins(fallback: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """A service-command function that also knows how to start the stand-ins."""

    def command(name: str) -> list[str]:
        return [sys.executable, "-m", COMMANDS[name]] if name in COMMANDS else fallback(name)

    return command
