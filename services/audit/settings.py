"""Audit's own settings (prefix `SAFEGUARD_AUDIT_`): where its signing key, KEK and witness log live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    """The keys and the witness log are files, never rows: the database's superuser must not reach them."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_AUDIT_", env_file=None, extra="ignore")

    signing_key_path: Path = Field(
        default=Path(".safeguard-data/audit/head-signing-key.pem"),
        description="Ed25519 key that signs tree heads; created 0600 on first start",
    )
    witness_log_path: Path = Field(
        default=Path(".safeguard-data/audit/witness.jsonl"),
        description="append-only JSON Lines of signed heads; copy it off the machine",
    )
    kek_path: Path = Field(
        default=Path(".safeguard-data/audit/key-encryption-key"),
        description="key-encryption key that wraps each school's data keys; created 0600 on first start",
    )
    checkpoint_seconds: float = Field(default=60.0, gt=0, description="how often new entries are checkpointed")
