"""RFC 8291's own worked example (section 5 / appendix A) opened by the tests' user-agent decryption."""

from __future__ import annotations

import http_ece
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.webpush import b64url_decode, b64url_encode, decrypt_aes128gcm

# RFC 8291 section 5: the keys, salt and message of the example, base64url as printed there.
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl"
    "7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def _private(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(text), "big"), ec.SECP256R1())


def test_the_rfc_8291_example_message_decrypts_to_its_plaintext() -> None:
    receiver = _private(UA_PRIVATE)
    assert decrypt_aes128gcm(b64url_decode(MESSAGE), receiver=receiver, auth_secret=b64url_decode(AUTH_SECRET)) == (
        PLAINTEXT
    )


def test_the_encryption_pywebpush_uses_reproduces_the_rfc_example_byte_for_byte() -> None:
    sealed = http_ece.encrypt(
        PLAINTEXT,
        salt=b64url_decode(SALT),
        private_key=_private(AS_PRIVATE),
        dh=b64url_decode(UA_PUBLIC),
        auth_secret=b64url_decode(AUTH_SECRET),
        version="aes128gcm",
    )
    assert b64url_encode(sealed) == MESSAGE


def test_a_tampered_message_does_not_decrypt() -> None:
    tampered = bytearray(b64url_decode(MESSAGE))
    tampered[-1] ^= 1
    with pytest.raises(InvalidTag):
        decrypt_aes128gcm(bytes(tampered), receiver=_private(UA_PRIVATE), auth_secret=b64url_decode(AUTH_SECRET))
