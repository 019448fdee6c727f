"""Actor assertions: only a well-signed, in-date token for routing names a person; the rest say why not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.actor_tokens import TokenRefused, load_or_create_issuer_key, load_verify_keys
from shared.contracts.envelope import utc_now
from tests.support.actors import Issuer

NOW = utc_now()
OPERATOR = Issuer()


def test_a_good_token_names_its_person_school_and_issuer() -> None:
    claims = OPERATOR.verifier.verify(OPERATOR.token("s-bird", now=NOW), now=NOW + timedelta(minutes=1))
    assert (claims.issuer, claims.person_id, claims.school_id, claims.audience) == (
        "operator",
        "s-bird",
        "st-marks",
        "routing",
    )


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "unsigned"),
        ("", "unsigned"),
        ("not a token", "malformed"),
        ("sgactor1.e30.AAAA", "malformed"),
        (Issuer().token("s-bird", now=NOW), "bad_signature"),
        (Issuer(name="console").token("s-bird", now=NOW), "unknown_issuer"),
        (OPERATOR.token("s-bird", now=NOW - timedelta(minutes=6)), "expired"),
        (OPERATOR.token("s-bird", now=NOW + timedelta(minutes=5)), "not_yet_valid"),
        (OPERATOR.token("s-bird", now=NOW, lifetime=timedelta(days=1)), "too_long"),
    ],
)
def test_a_token_that_cannot_be_believed_is_refused_with_its_reason(token: object, code: str) -> None:
    with pytest.raises(TokenRefused) as refused:
        OPERATOR.verifier.verify(token, now=NOW)
    assert refused.value.code == code


def test_a_tampered_token_is_refused() -> None:
    prefix, _body, signature = OPERATOR.token("r-crane", now=NOW).split(".")
    other_body = Issuer(key=OPERATOR.key).token("s-bird", now=NOW).split(".")[1]
    with pytest.raises(TokenRefused) as refused:
        OPERATOR.verifier.verify(f"{prefix}.{other_body}.{signature}", now=NOW)
    assert refused.value.code == "bad_signature"


def test_an_issuer_key_is_created_once_private_and_routing_reads_only_the_public_half(tmp_path: Path) -> None:
    key = load_or_create_issuer_key(tmp_path, issuer="operator")
    again = load_or_create_issuer_key(tmp_path, issuer="operator")
    assert (tmp_path / "operator.key").stat().st_mode & 0o777 == 0o600
    assert key.private_bytes_raw() == again.private_bytes_raw()
    keys = load_verify_keys(tmp_path)
    assert list(keys) == ["operator"] and keys["operator"].public_bytes_raw() == key.public_key().public_bytes_raw()
