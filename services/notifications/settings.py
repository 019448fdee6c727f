"""Notifications' own settings (prefix `SAFEGUARD_`): how each channel reaches people."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotificationSettings(BaseSettings):
    """Channel settings; an unset provider falls back to a local stand-in (file sink, log)."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", env_file=None, extra="ignore")

    vapid_key_file: str = Field(
        default="", description="VAPID private key (PEM, 0600); empty: vapid-private.pem beside the mail folder"
    )
    vapid_subject: str = Field(
        default="mailto:safeguarding@example.org", description="contact the push services may use (mailto: or https:)"
    )
    push_ttl_seconds: int = Field(default=86_400, ge=0, description="how long a push service may hold a message")
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    push_operator_token: SecretStr | None = Field(
        default=None, description="lets an operator subscribe a device for any person; unset: only ack-link holders"
    )

    smtp_host: str | None = Field(default=None, description="unset: emails are written to the mail folder instead")
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls", description="starttls upgrades a plain connection; tls connects with TLS from the start"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_ca_file: str | None = Field(
        default=None, description="CA bundle to verify the server with; unset: the system's"
    )
    mail_from: str = "Safeguard <safeguard@localhost>"

    sms_base_url: str | None = Field(default=None, description="Twilio-style API root; unset: SMS is only logged")
    sms_account_sid: str = ""
    sms_auth_token: SecretStr = SecretStr("")
    sms_from: str = Field(default="Safeguard", description="sender number or alphanumeric sender id")
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_status_callback_url: str | None = Field(
        default=None,
        description="this service's /api/v1/sms/status as the provider reaches it; unset: no delivery receipts",
    )

    delivery_max_attempts: int = Field(default=5, ge=1, description="attempts before a transient fault is final")
    delivery_backoff_seconds: list[float] = Field(
        default=[5.0, 30.0, 120.0, 600.0], description="wait before the n-th retry (the last one repeats)"
    )
    delivery_sending_timeout_seconds: float = Field(
        default=120.0, gt=0, description="an attempt cut off (crash) this long ago is reconciled; above every timeout"
    )
    delivery_concurrency: int = Field(default=16, ge=1, description="sends in flight at once per instance")
    delivery_poll_seconds: float = Field(default=1.0, gt=0, description="how often due retries are looked for")

    ephemeral_signing_key: bool = Field(
        default=False, description="development only: start without SAFEGUARD_SIGNING_KEY, links die with the process"
    )
    ack_link_days: float = Field(default=7.0, gt=0, description="how long an acknowledgement link stays valid")
