"""Settings every service reads from the environment (prefix `SAFEGUARD_`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the backbone is and how its streams are named.

    `subject_root` and `stream_name` are settings so that test runs (and trusts sharing one NATS
    cluster) never collide: every subject is `<subject_root>.<school_id>.<aggregate>.<event>`.
    """

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", env_file=None, extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/safeguard"
    subject_root: str = Field(default="sg", pattern=r"^[A-Za-z0-9_-]+$")
    stream_name: str = Field(default="SAFEGUARD_EVENTS", pattern=r"^[A-Za-z0-9_-]+$")
    stream_replicas: int = Field(default=1, ge=1, le=5)
    duplicate_window_seconds: float = Field(default=300.0, ge=120.0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    ack_wait_seconds: float = Field(
        default=30.0, ge=1.0, description="how long a delivery may go unacknowledged before JetStream redelivers it"
    )
    log_level: str = "INFO"
    otel_console: bool = Field(default=False, description="print finished spans to stderr")

    intake_http_host: str = "127.0.0.1"
    intake_http_port: int = 8080
    notifications_http_host: str = "127.0.0.1"
    notifications_http_port: int = 8081
    signing_key: str | None = Field(
        default=None, description="secret for acknowledgement links; a random one per process when unset"
    )
    console_url: str = Field(default="http://127.0.0.1:8081", description="base URL people open links on")
    policy_dir: str = Field(default="deploy/policies", description="folder of <school_id>.yaml policy files")
    unacknowledged_alert_minutes: float = Field(
        default=30.0, gt=0, description="how often the standing alert repeats once the escalation ladder has run out"
    )
    mail_sink_dir: str = Field(default=".safeguard-data/mail", description="where the email sink writes messages")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
