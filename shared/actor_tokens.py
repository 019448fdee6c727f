"""Who is asking, as an assertion routing can check: a short-lived token signed by whoever authenticated them.

Token: `sgactor1.<claims>.<signature>`, both parts base64url without padding. The claims are JSON: `iss` (the
issuer, e.g. `operator` for the CLI, `notifications` for the acknowledgement page, `console` for the staff app),
`sub` (the person id in the school's policy), `school`, `aud` (`routing`; `audit` for the audit queries;
`notifications` for the console's push subscriptions), `iat` and `exp` (Unix seconds), `jti` (a UUID, refused
the second time) and, only from the console to audit, `role` (the console account's role: `auditor` exists in no
policy, so the console that gives it is the one to vouch).
The signature is Ed25519 over `sgactor1.<claims>`: each issuer holds its own private key, routing holds only the
public keys, so a compromised routing cannot speak for anybody. The token says who the person is; never what they
may do — routing looks their role up in the school's policy (audit too, except for the console's `auditor`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "sgactor1"
AUDIENCE = "routing"
DEFAULT_LIFETIME = timedelta(minutes=5)
# A token meant to last longer than this is refused, whatever its issuer wrote: a stolen one must die soon.
MAX_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class ActorClaims:
    """What a verified token says: this issuer authenticated this person of this school."""

    issuer: str
    person_id: str
    school_id: str
    issued_at: datetime
    expires_at: datetime
    token_id: uuid.UUID
    audience: str = AUDIENCE
    role: str | None = None  # only audit reads it, and believes it only for a console role from the console


class TokenRefused(Exception):
    """The token cannot be believed; `code` is a word for machines, `reason` a sentence for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    key: Ed25519PrivateKey,
    *,
    issuer: str,
    person_id: str,
    school_id: str,
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    token_id: uuid.UUID | None = None,
    audience: str = AUDIENCE,
    role: str | None = None,
) -> str:
    """A signed token saying `issuer` authenticated `person_id` of `school_id` at `now`, for `audience`."""
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": person_id,
        "school": school_id,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": str(token_id or uuid.uuid4()),
    }
    if role is not None:
        claims["role"] = role
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(key.sign(f"{PREFIX}.{body}".encode()))
    return f"{PREFIX}.{body}.{signature}"


class ActorVerifier:
    """Checks tokens against the issuers' public keys (one per issuer)."""

    def __init__(
        self, keys: Mapping[str, Ed25519PublicKey], *, audience: str = AUDIENCE, folder: str | Path | None = None
    ) -> None:
        self._keys = dict(keys)
        self._audience = audience
        self._folder = folder

    @classmethod
    def from_folder(cls, folder: str | Path, *, audience: str = AUDIENCE) -> ActorVerifier:
        """The issuers' `*.pub` keys in `folder`, looked at again when a token names an issuer not yet known
        (an issuer that started after routing, such as the console, creates its key on first start)."""
        return cls(load_verify_keys(folder), audience=audience, folder=folder)

    @property
    def issuers(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, token: object, *, now: datetime) -> ActorClaims:
        """The claims of a well-signed, in-date token for this audience; TokenRefused otherwise."""
        if not isinstance(token, str) or not token:
            raise TokenRefused("unsigned", "the command carries no signed assertion of who is asking")
        prefix, _, rest = token.partition(".")
        body, _, signature = rest.partition(".")
        if prefix != PREFIX or not body or not signature:
            raise TokenRefused("malformed", "the assertion of who is asking is not a Safeguard actor token")
        try:
            claims = json.loads(_unb64(body))
            issuer = str(claims["iss"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TokenRefused("malformed", "the assertion of who is asking cannot be read") from None
        key = self._keys.get(issuer)
        if key is None and self._folder is not None:
            self._keys = load_verify_keys(self._folder)
            key = self._keys.get(issuer)
        if key is None:
            raise TokenRefused("unknown_issuer", f"{self._audience} holds no key for issuer {issuer!r}")
        try:
            key.verify(_unb64(signature), f"{PREFIX}.{body}".encode())
        except (InvalidSignature, ValueError, binascii.Error):
            raise TokenRefused("bad_signature", f"the assertion is not signed by {issuer}'s key") from None
        return self._checked(claims, issuer=issuer, now=now)

    def _checked(self, claims: dict[str, object], *, issuer: str, now: datetime) -> ActorClaims:
        try:
            issued = datetime.fromtimestamp(int(claims["iat"]), UTC)  # type: ignore[call-overload]
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)  # type: ignore[call-overload]
            verified = ActorClaims(
                issuer=issuer,
                person_id=str(claims["sub"]),
                school_id=str(claims["school"]),
                issued_at=issued,
                expires_at=expires,
                token_id=uuid.UUID(str(claims["jti"])),
                audience=str(claims["aud"]),
                role=str(claims["role"]) if "role" in claims else None,
            )
        except (KeyError, ValueError, TypeError, OverflowError):
            raise TokenRefused("malformed", f"the assertion lacks a claim {self._audience} needs") from None
        if verified.audience != self._audience:
            raise TokenRefused(
                "wrong_audience", f"the assertion is meant for {verified.audience}, not {self._audience}"
            )
        if expires - issued > MAX_LIFETIME:
            raise TokenRefused("too_long", f"the assertion claims to last longer than {self._audience} accepts")
        if issued > now + CLOCK_SKEW:
            raise TokenRefused("not_yet_valid", "the assertion was issued in the future")
        if expires <= now:
            raise TokenRefused("expired", "the assertion of who is asking has expired: sign in again")
        return verified


def load_or_create_issuer_key(folder: str | Path, *, issuer: str) -> Ed25519PrivateKey:
    """The issuer's signing key `<issuer>.key` (0600), created with its `<issuer>.pub` on first use."""
    folder = Path(folder)
    private = folder / f"{issuer}.key"
    if not private.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:  # O_EXCL: two processes starting together never overwrite each other's key
            descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_issuer_key(folder, issuer=issuer)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (folder / f"{issuer}.pub").write_bytes(public)
        return key
    if private.stat().st_mode & 0o077:
        raise PermissionError(f"the {issuer} signing key is readable by others: chmod 600 it")
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{private.name} does not hold an Ed25519 private key")
    return loaded


def load_verify_keys(folder: str | Path) -> dict[str, Ed25519PublicKey]:
    """Every `<issuer>.pub` in `folder`: the keys routing checks assertions with."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(Path(folder).glob("*.pub")):
        loaded = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(loaded, Ed25519PublicKey):
            keys[path.stem] = loaded
    return keys
