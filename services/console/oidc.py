"""OpenID Connect sign-in (authorization code flow with PKCE), one identity provider per trust, with authlib.

The provider proves who the person is; never what they may do. The ID token's signature (the provider's JWKS),
issuer, audience, expiry and nonce are checked; its verified email must be in one of the trust's allowed
domains and be the contact email of a person in one of the trust's schools' policies, who must hold an
enabled console account whose role the policy still gives them. Roles come from the policy, never from the
provider. Unless the trust says its provider enforces multi-factor sign-in, the TOTP code is still asked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import BaseModel, Field

from services.routing.policy.model import Person, Policy

ALGORITHMS = ["RS256", "ES256", "PS256"]
LEEWAY_SECONDS = 60
REQUEST_MINUTES = 10  # how long a sign-in may stay at the provider


class OidcRefused(Exception):
    """A sign-in through the provider that cannot be accepted; the reason is safe to show and to log."""


class OidcProvider(BaseModel):
    """One trust's identity provider (Microsoft 365, Google Workspace, …), from the OIDC settings file."""

    id: str = Field(pattern=r"^[a-z0-9-]{1,40}$", description="in the sign-in URL: /sign-in/oidc/<id>")
    label: str = Field(min_length=1, max_length=80, description="on the button, e.g. 'Microsoft 365'")
    trust: str = Field(description="the trust its schools' policies name (school.trust), or a school's id")
    discovery_url: str = Field(description="the provider's /.well-known/openid-configuration")
    client_id: str = Field(min_length=1)
    client_secret_file: str = Field(description="a file holding the client secret (never the settings file)")
    allowed_email_domains: tuple[str, ...] = Field(min_length=1)
    idp_enforces_mfa: bool = Field(default=False, description="true only if the provider makes everyone use MFA")

    def schools(self, trusts: Mapping[str, str | None]) -> frozenset[str]:
        """The schools whose people may sign in through this provider."""
        return frozenset(school for school, trust in trusts.items() if self.trust in (trust, school))

    def secret(self) -> str:
        return Path(self.client_secret_file).read_text().strip()


def load_providers(path: str | None) -> dict[str, OidcProvider]:
    """The providers in the OIDC settings file (`providers:` list), by id; none when no file is set."""
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    providers = [OidcProvider.model_validate(entry) for entry in data.get("providers", [])]
    return {provider.id: provider for provider in providers}


def secure_url(url: str) -> bool:
    """https, or http to this machine only (a provider on loopback in tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Started:
    """A sign-in sent to the provider: where to send the browser, and what to keep until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Identified:
    """Who the provider says signed in, once the ID token passed every check."""

    email: str
    subject: str


class OidcClient:
    """Talks to one provider: discovery, the authorization URL, the code exchange and the ID token checks."""

    def __init__(self, provider: OidcProvider, *, redirect_uri: str, http: httpx.AsyncClient | None = None) -> None:
        self.provider = provider
        self.redirect_uri = redirect_uri
        self._http = http or httpx.AsyncClient(timeout=10.0)
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once), its endpoints checked to be https."""
        if self._metadata is None:
            if not secure_url(self.provider.discovery_url):
                raise OidcRefused("the provider's discovery URL is not https")
            answer = await self._http.get(self.provider.discovery_url)
            answer.raise_for_status()
            found = answer.json()
            needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not all(isinstance(found.get(key), str) and secure_url(found[key]) for key in needed):
                raise OidcRefused("the provider's discovery document lacks an https endpoint")
            self._metadata = found
        return self._metadata

    def _oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.provider.client_id,
            client_secret=self.provider.secret(),
            redirect_uri=self.redirect_uri,
            scope="openid email",
            code_challenge_method="S256",
        )

    async def start(self, *, state: str, nonce: str, code_verifier: str) -> Started:
        metadata = await self.metadata()
        async with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=code_verifier
            )
        return Started(url, state, nonce, code_verifier)

    async def finish(self, *, code: str, nonce: str, code_verifier: str, now: datetime) -> Identified:
        """Exchange the code (with the PKCE verifier) and check the ID token; OidcRefused on any failure."""
        metadata = await self.metadata()
        try:
            async with self._oauth() as oauth:
                token = await oauth.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=code_verifier, redirect_uri=self.redirect_uri
                )
        except Exception as error:  # the provider refused the code: say so, never its body
            raise OidcRefused(f"the provider would not exchange the code ({type(error).__name__})") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the provider sent no ID token")
        claims = await self._checked(id_token, metadata=metadata, nonce=nonce, now=now)
        if claims.get("email_verified") is False:
            raise OidcRefused("the provider says this email address is not verified")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OidcRefused("the ID token carries no email address")
        return Identified(email=email.strip().lower(), subject=str(claims["sub"]))

    async def _checked(self, id_token: str, *, metadata: dict[str, Any], nonce: str, now: datetime) -> dict[str, Any]:
        answer = await self._http.get(metadata["jwks_uri"])
        answer.raise_for_status()
        try:
            decoded = jwt.decode(
                id_token, KeySet.import_key_set(answer.json()), registry=JWSRegistry(algorithms=ALGORITHMS)
            )
        except (JoseError, ValueError) as error:
            raise OidcRefused(f"the ID token's signature does not verify ({type(error).__name__})") from None
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": self.provider.client_id},
        }
        token = CodeIDToken(
            decoded.claims, decoded.header, options, {"nonce": nonce, "client_id": self.provider.client_id}
        )
        try:
            token.validate(now=int(now.timestamp()), leeway=LEEWAY_SECONDS)
        except JoseError as error:
            raise OidcRefused(
                f"the ID token fails its checks: {error.error} {getattr(error, 'claim', '')}".strip()
            ) from None
        if token.get("nonce") != nonce:
            raise OidcRefused("the ID token fails its checks: its nonce is not the one this sign-in sent")
        return dict(token)


def person_for(email: str, *, provider: OidcProvider, policies: Mapping[str, Policy]) -> tuple[str, Person]:
    """The school and person whose policy contact email this is, among the provider's schools; else refused."""
    domain = email.rpartition("@")[2]
    if domain not in {d.lower() for d in provider.allowed_email_domains}:
        raise OidcRefused(f"addresses at {domain} may not sign in through {provider.label}")
    found = [
        (school, person)
        for school, policy in sorted(policies.items())
        for person in policy.people
        if person.contact.email and person.contact.email.lower() == email
    ]
    if len(found) != 1:
        raise OidcRefused("no one with this email address is named in the school's policy")
    return found[0]


def request_expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=REQUEST_MINUTES)
