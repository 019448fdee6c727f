"""What `safeguard up` prints once everything is ready."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

CONCERNS_PATH = "/api/v1/schools/{school_id}/concerns"
SAMPLE_SCHOOL_ID = "st-marks"
CONSOLE_ACCOUNT = (
    "make an account: safeguard user add NAME --school st-marks --person s-bird --role designated_safeguarding_lead"
)
SAMPLE_CONCERN: dict[str, object] = {
    "reporter": {"role": "staff", "name": "Test Teacher", "contact": "teacher@example.org"},
    "people": [{"role": "learner", "involvement": "victim", "name": "Learner A", "age": 12}],
    "kind": "online_bullying",
    "summary": "Hurtful messages in a class group chat",
    "details": "Synthetic test concern",
    "platform": "messaging_app",
    "in_school_hours": False,
}


def browsable_host(host: str) -> str:
    """A host a browser can reach for a server bound to `host` (wildcards become loopback)."""
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host


@dataclass(frozen=True)
class Endpoints:
    """Where the running system can be reached."""

    intake_base: str
    notifications_base: str
    nats_url: str
    database_url: str
    console_base: str = ""
    console_sign_in: str = ""

    @property
    def concerns_url(self) -> str:
        """The URL template of the concern intake API."""
        return self.intake_base + CONCERNS_PATH


def sample_curl(endpoints: Endpoints) -> str:
    """A shell line that reports the synthetic sample concern."""
    url = endpoints.intake_base + CONCERNS_PATH.format(school_id=SAMPLE_SCHOOL_ID)
    body = json.dumps(SAMPLE_CONCERN)
    return f"curl -i -X POST {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def format_banner(endpoints: Endpoints) -> str:
    """The ready message: one `label: value` line per endpoint, then a sample request."""
    how = endpoints.console_sign_in or CONSOLE_ACCOUNT
    return "\n".join(
        [
            "Safeguard is up.",
            f"  intake API:    {endpoints.concerns_url}",
            f"  notifications: {endpoints.notifications_base}",
            *([f"  console:       {endpoints.console_base} ({how})"] if endpoints.console_base else []),
            f"  NATS:          {endpoints.nats_url}",
            f"  database:      {endpoints.database_url}",
            "Report a synthetic concern:",
            f"  {sample_curl(endpoints)}",
            "Press Ctrl-C to stop.",
        ]
    )
