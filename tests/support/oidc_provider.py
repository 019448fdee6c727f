"""A fake OpenID provider on a loopback port: discovery, JWKS, authorize and token endpoints, RS256 ID tokens.

It signs in whoever `email` names without asking, checks the client secret, the redirect URI and the PKCE
verifier like a real one, and can be told to misbehave (`faults`) the ways a console must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.local_http import serving

CLIENT_ID = "safeguard-console"
CLIENT_SECRET = "test-client-secret"


@dataclass
class FakeProvider:
    """The provider's state: its keys, the codes it issued, who signs in next and what to get wrong."""

    url: str = ""
    email: str = "s.bird@st-marks.example.org"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key"}))
    impostor: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key"}))
    faults: set[str] = field(default_factory=set)  # wrong_nonce, wrong_audience, expired, bad_signature
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": "subject-" + hashlib.sha256(self.email.encode()).hexdigest()[:12],
            "aud": "another-client" if "wrong_audience" in self.faults else CLIENT_ID,
            "iat": now - 3600 if "expired" in self.faults else now,
            "exp": now - 1800 if "expired" in self.faults else now + 300,
            "nonce": "not-the-nonce" if "wrong_nonce" in self.faults else grant["nonce"],
            "email": self.email,
            "email_verified": True,
        }
        signer = self.impostor if "bad_signature" in self.faults else self.key
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, signer)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def provider_app(provider: FakeProvider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.url,
            "authorization_endpoint": f"{provider.url}/authorize",
            "token_endpoint": f"{provider.url}/token",
            "jwks_uri": f"{provider.url}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [provider.key.as_dict(private=False)]}

    @app.get("/authorize")
    async def authorize(
        client_id: str, redirect_uri: str, state: str, nonce: str, code_challenge: str, code_challenge_method: str
    ) -> RedirectResponse:
        if client_id != CLIENT_ID or code_challenge_method != "S256":
            raise HTTPException(400, "unknown client or no PKCE")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"nonce": nonce, "challenge": code_challenge, "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

    @app.post("/token")
    async def token(
        code: str = Form(),
        code_verifier: str = Form(),
        redirect_uri: str = Form(),
        authorization: str = Header(default=""),
    ) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        grant = provider.codes.pop(code, None)
        if authorization != expected or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if _s256(code_verifier) != grant["challenge"] or redirect_uri != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": provider.id_token(grant)}
        )

    return app


@asynccontextmanager
async def fake_provider() -> AsyncIterator[FakeProvider]:
    """The provider served on 127.0.0.1 at a port the system picks."""
    provider = FakeProvider()
    async with serving(provider_app(provider)) as url:
        provider.url = url
        yield provider
