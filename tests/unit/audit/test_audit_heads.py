"""Signed heads verify with the public key alone; the key file is private; the witness log reads back."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.checkpoint import checkpoint_event
from services.audit.heads import (
    TreeHead,
    WitnessLog,
    head_signature_holds,
    load_or_create_signing_key,
    load_public_key,
    public_key_pem,
    sign_head,
)
from tests.support.ledgers import synthetic_chain, witness_over

HEAD = TreeHead(
    school_id="st-marks", tree_size=8, root_hash="ab" * 32, timestamp="2026-01-05T09:00:00+00:00", previous=None
)


def test_a_signed_head_verifies_with_the_public_key_only_and_not_once_changed() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_head(HEAD, key=key)
    public = load_public_key(public_key_pem(key.public_key()))
    assert head_signature_holds(signed, public_key=public)
    grown = dataclasses.replace(signed, head=dataclasses.replace(HEAD, tree_size=9))
    assert not head_signature_holds(grown, public_key=public)
    assert not head_signature_holds(signed, public_key=Ed25519PrivateKey.generate().public_key())


def test_the_signing_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "key.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(path)
    assert public_key_pem(again.public_key()) == public_key_pem(key.public_key())


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_signing_key(path)


def test_the_witness_log_reads_back_what_was_written_per_school(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    log = WitnessLog(tmp_path / "witness.jsonl")
    records = witness_over(synthetic_chain(10), school_id="st-marks", key=key, every=4)
    other = witness_over(synthetic_chain(3, school_id="oak-hill"), school_id="oak-hill", key=key, every=4)
    for record in [*records, *other]:
        log.append(record)
    assert list(log.records(school_id="st-marks")) == records
    assert {s: h.head.tree_size for s, h in log.latest_heads().items()} == {"st-marks": 10, "oak-hill": 3}


def test_a_checkpoint_event_carries_the_signed_head_and_is_the_same_event_when_published_again() -> None:
    signed = sign_head(HEAD, key=Ed25519PrivateKey.generate())
    event = checkpoint_event(signed)
    assert (event.type, event.school_id, event.payload.tree_size, event.payload.signature) == (
        "ledger.checkpointed",
        "st-marks",
        8,
        signed.signature,
    )
    assert checkpoint_event(signed).event_id == event.event_id
