"""The browser's and the push service's side of Web Push, written for tests from RFC 8291, 8188 and 8292.

`decrypt_aes128gcm` is what a user agent does with a push message; `verify_vapid` is what a push service
checks before accepting one; `LocalPushService` is a push service on 127.0.0.1 doing both.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.bench.loopback import loopback_site


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hkdf(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt_aes128gcm(body: bytes, *, receiver: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """Open an RFC 8291 message: the RFC 8188 header carries salt, record size and the sender's ECDH key."""
    salt, record_size, key_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_raw, records = body[21 : 21 + key_length], body[21 + key_length :]
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_raw)
    shared_secret = receiver.exchange(ec.ECDH(), sender)
    key_info = b"WebPush: info\x00" + _public_bytes(receiver.public_key()) + sender_raw
    ikm = _hkdf(shared_secret, salt=auth_secret, info=key_info, length=32)
    content_key = _hkdf(ikm, salt=salt, info=b"Content-Encoding: aes128gcm\x00", length=16)
    base_nonce = int.from_bytes(_hkdf(ikm, salt=salt, info=b"Content-Encoding: nonce\x00", length=12), "big")
    plaintext = bytearray()
    starts = range(0, len(records), record_size)
    for sequence, start in enumerate(starts):
        nonce = (base_nonce ^ sequence).to_bytes(12, "big")
        padded = AESGCM(content_key).decrypt(nonce, records[start : start + record_size], None)
        unpadded = padded.rstrip(b"\x00")
        # RFC 8188 section 2: 0x02 ends the last record, 0x01 every other one.
        expected = 2 if sequence == len(starts) - 1 else 1
        if not unpadded or unpadded[-1] != expected:
            raise ValueError("bad record delimiter")
        plaintext += unpadded[:-1]
    return bytes(plaintext)


class VapidRejected(Exception):
    """A push service would refuse this request's VAPID credentials."""


def verify_vapid(authorization: str, *, audience: str, now: float) -> tuple[dict[str, Any], str]:
    """RFC 8292: check `vapid t=<JWT>,k=<key>`: ES256 signature by k, aud, exp within 24 h, sub; (claims, k)."""
    scheme, _, parameters = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidRejected(f"scheme {scheme!r}")
    fields = dict(part.strip().split("=", 1) for part in parameters.split(","))
    token, key = fields.get("t", ""), fields.get("k", "")
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
    except ValueError as error:
        raise VapidRejected("t is not a JWT") from error
    if json.loads(b64url_decode(header_b64)).get("alg") != "ES256":
        raise VapidRejected("alg is not ES256")
    signature = b64url_decode(signature_b64)
    if len(signature) != 64:
        raise VapidRejected("an ES256 signature is 64 bytes (r || s)")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except Exception as error:
        raise VapidRejected("signature does not verify") from error
    claims = json.loads(b64url_decode(claims_b64))
    if claims.get("aud") != audience:
        raise VapidRejected(f"aud {claims.get('aud')!r} is not {audience!r}")
    if not now < int(claims.get("exp", 0)) <= now + 24 * 3600:
        raise VapidRejected("exp is past or more than 24 hours ahead")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise VapidRejected("sub is neither mailto: nor https:")
    return claims, key


@dataclass
class SubscribedBrowser:
    """A user agent's push subscription: its ECDH key pair and auth secret, as PushManager makes them."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: uuid.uuid4().bytes)

    def subscription_json(self) -> dict[str, Any]:
        keys = {
            "p256dh": b64url_encode(_public_bytes(self.private_key.public_key())),
            "auth": b64url_encode(self.auth_secret),
        }
        return {"endpoint": self.endpoint, "keys": keys}


@dataclass(frozen=True)
class Received:
    browser: str
    headers: dict[str, str]
    claims: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class LocalPushService:
    """A push service on a free loopback port: verifies VAPID, decrypts, records; or answers as told per browser."""

    origin: str = ""
    browsers: dict[str, SubscribedBrowser] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)  # browser name -> status to answer instead of 201
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def new_browser(self) -> SubscribedBrowser:
        name = uuid.uuid4().hex
        self.browsers[name] = SubscribedBrowser(endpoint=f"{self.origin}/push/{name}")
        return self.browsers[name]

    def answer(self, browser: SubscribedBrowser, status: int) -> None:
        """From now on answer `status` for this browser (410: the user agent unsubscribed)."""
        self.answers[browser.endpoint.rsplit("/", 1)[1]] = status

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.browsers:
            return web.Response(status=404)
        if name in self.answers:
            return web.Response(status=self.answers[name])
        try:
            claims, _ = verify_vapid(request.headers.get("Authorization", ""), audience=self.origin, now=time.time())
        except VapidRejected as rejected:
            self.refused.append(str(rejected))
            return web.Response(status=401)
        if request.headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in request.headers:
            self.refused.append("not aes128gcm or no TTL")
            return web.Response(status=400)
        browser = self.browsers[name]
        plaintext = decrypt_aes128gcm(
            await request.read(), receiver=browser.private_key, auth_secret=browser.auth_secret
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(name, headers, claims, json.loads(plaintext)))
        return web.Response(status=201, headers={"Location": f"{self.origin}/message/{uuid.uuid4().hex}"})


@asynccontextmanager
async def local_push_service() -> AsyncIterator[LocalPushService]:
    """Run a LocalPushService on 127.0.0.1 at a port the system picks."""
    service = LocalPushService()
    app = web.Application()
    app.router.add_post("/push/{name}", service._push)
    async with loopback_site(app) as origin:
        service.origin = origin
        yield service
