"""People asking for case commands in tests: an issuer's key, and commands signed with a fresh assertion each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.actor_tokens import DEFAULT_LIFETIME, ActorVerifier, issue
from shared.contracts.envelope import utc_now


@dataclass(frozen=True)
class Issuer:
    """A component that authenticated a person (the operator CLI by default) and its signing key."""

    name: str = "operator"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def verifier(self) -> ActorVerifier:
        return ActorVerifier({self.name: self.key.public_key()})

    def token(
        self,
        person_id: str,
        *,
        school_id: str = "st-marks",
        now: datetime | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        return issue(
            self.key,
            issuer=self.name,
            person_id=person_id,
            school_id=school_id,
            now=now or utc_now(),
            lifetime=lifetime,
        )

    def sign(self, document: dict[str, Any]) -> dict[str, Any]:
        """`document` as the console would send it: its `actor` replaced by an assertion for that person."""
        unsigned = {key: value for key, value in document.items() if key != "actor"}
        return {**unsigned, "assertion": self.token(document["actor"]["id"], school_id=document["school_id"])}
