"""Who asks audit for a school's record: a verified assertion, a role audit believes, and the schools it covers.

A query names no actor. It carries `assertion`, an actor token (shared/actor_tokens.py) for audience `audit`,
signed by the component that authenticated the person (the console). Two roles may read the record this way:
the auditor, a console role no policy names (so audit believes it only from the console's own key), and the
trust safeguarding lead, whom audit finds in the school's policy itself. Either sees the schools of the trust of
the school the token names (that school alone when it is in no trust). Anyone else is refused.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.routing.policy.model import Policy
from services.routing.policy_book import policies_in
from shared.actor_tokens import ActorClaims, ActorVerifier, TokenRefused

log = logging.getLogger(__name__)

AUDIENCE = "audit"
AUDITOR = "auditor"
TRUST_LEAD = "trust_safeguarding_lead"
# A role no policy names is believed only from the issuer whose accounts give it.
ROLE_ISSUERS = {AUDITOR: frozenset({"console"})}
# The inbox "consumer" under which used assertion ids are kept: a second use is a replay.
USED_ASSERTIONS = "audit-query-assertions"


class QueryRefused(Exception):
    """The asker may not have this; `code` is a word for machines, `reason` a sentence for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Asker:
    """A verified reader of the record: who, in what role, and the schools they may read."""

    person_id: str
    role: str
    school_ids: frozenset[str]
    token_id: uuid.UUID


class PolicyFolder:
    """The schools' policies from the policy folder, read again when a school is not yet known."""

    def __init__(self, folder: str | Path) -> None:
        self._folder = folder
        self._policies: dict[str, Policy] = {}

    def get(self, school_id: str) -> Policy | None:
        if school_id not in self._policies:
            try:
                self._policies = {policy.school.id: policy for _, policy in policies_in(self._folder)}
            except (OSError, ValueError):
                log.exception("the policy folder cannot be read")
        return self._policies.get(school_id)

    def trust_schools(self, school_id: str) -> frozenset[str]:
        """The school and every school of its trust."""
        policy = self.get(school_id)
        trust = policy.school.trust if policy else None
        if not trust:
            return frozenset({school_id})
        return frozenset(school for school, p in self._policies.items() if p.school.trust == trust)


def role_of(claims: ActorClaims, policy: Policy) -> str:
    """The role the asker reads in; QueryRefused when it is not one that may read the record."""
    wanted = claims.role or TRUST_LEAD
    if wanted == AUDITOR:
        if claims.issuer not in ROLE_ISSUERS[AUDITOR]:
            raise QueryRefused("not_permitted", f"{claims.issuer} cannot vouch that someone is an auditor")
        return AUDITOR
    person = policy.person(claims.person_id)
    if wanted == TRUST_LEAD and person is not None and TRUST_LEAD in {role.value for role in person.roles}:
        return TRUST_LEAD
    raise QueryRefused("not_permitted", "only an auditor or the trust safeguarding lead may read the record here")


@dataclass
class QueryGate:
    """Establishes the asker of an audit query and checks they may read the school they ask about."""

    verifier: ActorVerifier
    policies: PolicyFolder

    @classmethod
    def from_settings(cls, *, actor_keys_dir: str | Path, policy_dir: str | Path) -> QueryGate:
        return cls(ActorVerifier.from_folder(actor_keys_dir, audience=AUDIENCE), PolicyFolder(policy_dir))

    def claims(self, document: dict[str, Any], *, now: datetime) -> ActorClaims:
        """The assertion's claims; QueryRefused when it is missing, forged, expired or for someone else."""
        if "actor" in document:
            raise QueryRefused("claimed_actor", "a query may not name its own actor: it must carry a signed assertion")
        try:
            return self.verifier.verify(document.get("assertion"), now=now)
        except TokenRefused as refused:
            raise QueryRefused(refused.code, refused.reason) from None

    def asker(self, document: dict[str, Any], *, now: datetime) -> Asker:
        """Who asks, once they may read the school the query names."""
        claims = self.claims(document, now=now)
        policy = self.policies.get(claims.school_id)
        if policy is None:
            raise QueryRefused("unknown_school", f"school {claims.school_id} has no policy")
        asker = Asker(
            person_id=claims.person_id,
            role=role_of(claims, policy),
            school_ids=self.policies.trust_schools(claims.school_id),
            token_id=claims.token_id,
        )
        if document.get("school_id") not in asker.school_ids:
            raise QueryRefused("wrong_school", "that school's record is not yours to read")
        return asker
