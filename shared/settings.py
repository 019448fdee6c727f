"""Settings every service reads from the environment (prefix `SAFEGUARD_`)."""

from __future__ import annotations

import json
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class Settings(BaseSettings):
    """Where the backbone is and how its streams are named.

    `subject_root` and `stream_name` are settings so that test runs (and trusts sharing one NATS
    cluster) never collide: every subject is `<subject_root>.<school_id>.<aggregate>.<event>`.
    """

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", env_file=None, extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = Field(default=None, description="this service's NATS identity (docs/security.md)")
    nats_password: str | None = Field(default=None, repr=False)
    nats_password_file: str | None = Field(default=None, description="a file holding the NATS password instead")
    database_url: str = Field(default="postgresql+asyncpg://postgres@127.0.0.1:5432/safeguard", repr=False)
    database_password_file: str | None = Field(
        default=None, description="a file holding the password of database_url's user (a mounted secret)"
    )
    subject_root: str = Field(default="sg", pattern=r"^[A-Za-z0-9_-]+$")
    stream_name: str = Field(default="SAFEGUARD_EVENTS", pattern=r"^[A-Za-z0-9_-]+$")
    stream_replicas: int = Field(default=1, ge=1, le=5)
    duplicate_window_seconds: float = Field(default=300.0, ge=120.0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    batch_window_seconds: float = Field(
        default=0.01,
        ge=0,
        le=5.0,
        description="how long a busy consumer (its batch's first message came within this long) waits for more "
        "before handling what it has; longer windows make fuller batches under load. After a quiet spell a "
        "consumer takes what is queued at once, so a hop at low load does not wait. 0: never wait",
    )
    ack_wait_seconds: float = Field(
        default=30.0, ge=1.0, description="how long a delivery may go unacknowledged before JetStream redelivers it"
    )
    log_level: str = "INFO"
    otel_console: bool = Field(default=False, description="print finished spans to stderr")

    intake_http_host: str = "127.0.0.1"
    intake_http_port: int = 8080
    intake_max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="larger bodies are cut and kept")
    intake_rate_per_second: float = Field(default=1.0, gt=0, description="reports per second per client address")
    intake_rate_burst: int = Field(
        default=60, ge=1, description="reports one client address may send at once (a school shares one address)"
    )
    intake_email_addresses: dict[str, str] = Field(
        default_factory=dict, description='JSON: address -> school, e.g. {"report@st-marks.example.org": "st-marks"}'
    )
    intake_sweep_seconds: float = Field(default=30.0, gt=0, description="how often intake looks for stuck raw inputs")
    intake_stuck_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a raw input still `received` this long after arriving is finished by the sweeper",
    )
    intake_smtp_host: str = "127.0.0.1"
    intake_smtp_port: int | None = Field(default=None, description="SMTP listener port; none: no listener")
    intake_max_email_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, description="larger mail is refused (552)")
    intake_own_message_domains: list[str] = Field(
        default=["safeguard.local"], description="Message-ID domains of our own mail: such mail coming back is a loop"
    )
    intake_webhook_sources_file: str = Field(
        default="deploy/webhooks/sources.yaml", description="form webhook sources: school and field mapping each"
    )
    intake_webhook_secrets: dict[str, str] = Field(
        default_factory=dict, description='JSON: source -> HMAC secret, e.g. {"st-marks-google-forms": "..."}'
    )
    intake_webhook_tolerance_seconds: float = Field(
        default=300.0, gt=0, description="how far a webhook's signed timestamp may be from now (replay window)"
    )
    intake_max_form_bytes: int = Field(
        default=30 * 1024 * 1024, ge=1024, description="a report page post, files included"
    )
    intake_max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="larger files are quarantined"
    )
    intake_attachments_dir: str = Field(
        default=".safeguard-data/attachments", description="attachments by SHA-256; disallowed ones in quarantine/"
    )
    notifications_http_host: str = "127.0.0.1"
    notifications_http_port: int = 8081
    signing_key: str | None = Field(
        default=None, description="secret for acknowledgement links; a random one per process when unset"
    )
    actor_keys_dir: str = Field(
        default=".safeguard-data/actor-keys",
        description="keys for signed actor assertions: routing reads every <issuer>.pub, an issuer its <issuer>.key",
    )
    console_url: str = Field(default="http://127.0.0.1:8081", description="base URL people open links on")
    policy_dir: str = Field(default="deploy/policies", description="folder of <school_id>.yaml policy files")
    unacknowledged_alert_minutes: float = Field(
        default=30.0, gt=0, description="how often the standing alert repeats once the escalation ladder has run out"
    )
    debrief_reminder_hours: float = Field(
        default=168.0, gt=0, description="how often an open debrief action's owner is reminded after its due date"
    )
    mail_sink_dir: str = Field(default=".safeguard-data/mail", description="where the email sink writes messages")

    @model_validator(mode="after")
    def _password_from_file(self) -> Settings:
        """Put the password a secret file holds into the database URL, so no password sits in the environment."""
        if self.database_password_file is not None:
            with open(self.database_password_file, encoding="utf-8") as secret:
                password = secret.read().strip()
            url = make_url(self.database_url).set(password=password)
            self.database_url = url.render_as_string(hide_password=False)
        return self

    def nats_credentials(self) -> tuple[str, str] | None:
        """(user, password) when an identity is configured; None for an open server."""
        if self.nats_user is None:
            return None
        password = self.nats_password
        if password is None and self.nats_password_file is not None:
            with open(self.nats_password_file, encoding="utf-8") as secret:
                password = secret.read().strip()
        if password is None:
            raise ValueError("SAFEGUARD_NATS_USER is set without SAFEGUARD_NATS_PASSWORD or _PASSWORD_FILE")
        return self.nats_user, password


def as_environment(settings: BaseSettings, *, prefix: str = "SAFEGUARD_") -> dict[str, str]:
    """The settings as the environment variables another process reads them back from (lists and dicts as JSON)."""
    environment = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            environment[f"{prefix}{name.upper()}"] = text
    return environment


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
