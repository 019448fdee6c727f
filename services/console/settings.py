"""The console's own settings (prefix `SAFEGUARD_CONSOLE_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Where the console listens and how strict sign-in is."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_CONSOLE_", env_file=None, extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8082
    secure_cookies: bool = Field(
        default=True, description="Secure cookies; turn off only for plain http://127.0.0.1 on one machine"
    )
    session_hours: float = Field(default=8.0, gt=0, description="how long a signed-in session lasts")
    second_factor_minutes: float = Field(default=5.0, gt=0, description="time to type the code after the password")
    lock_after_failures: int = Field(default=5, ge=1, description="failed sign-ins in a row that lock an account")
    lock_minutes: float = Field(default=15.0, gt=0)
    attempts_per_minute: int = Field(default=20, ge=1, description="sign-in attempts one client may make a minute")
    inbox_poll_seconds: float = Field(default=2.0, gt=0, description="how often the live inbox looks for news")
    events_stream_seconds: float = Field(default=300.0, gt=0, description="a live inbox stream ends (and reconnects)")
    projection_window_seconds: float = Field(
        default=0.1,
        ge=0,
        le=1.0,
        description="how long the read model's busy consumer waits to fill its batch (the services' own window, "
        "SAFEGUARD_BATCH_WINDOW_SECONDS, is kept short for the hops a concern takes; nobody waits on this one but a "
        "page that polls, so fuller batches cost less a concern)",
    )
    projection_batch_size: int = Field(
        default=128, ge=1, le=1000, description="events the read model takes in a batch (two statements a batch)"
    )
    totp_issuer: str = "Safeguard"
    public_url: str = Field(
        default="http://127.0.0.1:8082", description="the console's address as browsers see it (OIDC redirect URI)"
    )
    oidc_file: str | None = Field(default=None, description="YAML file of the trusts' OpenID Connect providers")
    intake_url: str = Field(
        default="http://127.0.0.1:8080", description="intake's base URL: the console's report form sends concerns there"
    )
