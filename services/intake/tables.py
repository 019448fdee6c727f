"""Intake's tables beyond the store's (webhook attempts, receipts), declared on the same metadata as the store's."""

from __future__ import annotations

import sqlalchemy as sa

from services.intake.store import metadata

# Refused webhook attempts are kept apart from raw inputs: an unsigned flood never reaches the concern path.
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("attempt_id", sa.Uuid, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("signature_timestamp", sa.Text),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Index("webhook_attempts_by_time", "received_at"),
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("reference", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("secret_sha256", sa.Text),
    sa.Column("case_id", sa.Text, unique=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

__all__ = ["metadata", "receipts", "webhook_attempts"]
