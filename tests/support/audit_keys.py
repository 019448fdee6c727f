"""Audit's keys in tests: the KEK a test's audit service uses (its settings point at a file under tmp_path)."""

from __future__ import annotations

from services.audit.kek import load_or_create_kek
from services.audit.keyring import KeyRing
from services.audit.settings import AuditSettings
from services.audit.store import SqlLedger


def audit_keyring() -> KeyRing:
    """The key ring over the KEK file this test's settings name (the one a running audit service uses)."""
    return KeyRing(load_or_create_kek(AuditSettings().kek_path))


def sealing_ledger() -> SqlLedger:
    """The ledger as audit appends to it: personal fields sealed with this test's keys."""
    return SqlLedger(sealer=audit_keyring())
