"""Who is asking for a case command: a verified assertion, a role from the school's policy, never a claim.

A command names no actor of its own. It carries `assertion`, a token (shared/actor_tokens.py) signed by the
component that authenticated the person; routing checks the signature, the expiry, the school and that the
token was not used before, then looks the person up in the school's policy people for their role. Every
refusal is recorded as a case.command_refused event (so it lands in the audit ledger) and logged by id.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.routing.case.roles import DEPUTY, DSL, HEADTEACHER, NAMED_GOVERNOR, spoken
from services.routing.domain import ROUTING
from services.routing.policy.model import Policy
from services.routing.policy.vocabulary import TRUST_ADMINISTRATOR
from services.routing.policy_book import PolicyBook, UnknownSchool
from shared.actor_tokens import ActorClaims, ActorVerifier, TokenRefused
from shared.contracts.case_events import CaseCommandRefused, CaseCommandRefusedPayload
from shared.contracts.envelope import Actor, Event
from shared.unit_of_work import Work

log = logging.getLogger(__name__)

# The inbox "consumer" under which used assertion ids are kept: a second use is a replay.
USED_ASSERTIONS = "routing-command-assertions"
# When a person holds several roles, the one that may do most on a case speaks for them.
ROLE_PRECEDENCE = (DSL, HEADTEACHER, DEPUTY, NAMED_GOVERNOR)
# Who may adopt a new version of a school's policy, named in the version in force (the first they hold acts).
POLICY_KEEPERS = (TRUST_ADMINISTRATOR.value, DSL, HEADTEACHER)


class CommandRefused(Exception):
    """The asker could not be established; recorded as case.command_refused."""

    def __init__(self, code: str, reason: str, *, claims: ActorClaims | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.claims = claims


def role_in_policy(roles: tuple[str, ...]) -> str:
    """The role a person acts in on a case: the highest of theirs (precedence above), else their first."""
    for role in ROLE_PRECEDENCE:
        if role in roles:
            return role
    return roles[0]


@dataclass
class CommandGate:
    """Establishes the actor of a case command from its signed assertion and the school's policy."""

    verifier: ActorVerifier
    policies: PolicyBook

    def actor(self, document: dict[str, Any], *, now: datetime) -> tuple[Actor, ActorClaims]:
        """The verified actor of `document`, with the assertion's claims; CommandRefused when there is none."""
        claims, policy = self._verified(document, now=now)
        person = policy.person(claims.person_id)
        if person is None or person.external:
            raise CommandRefused(
                "not_in_policy", f"{claims.person_id} is not one of the school's people in its policy", claims=claims
            )
        role = role_in_policy(tuple(role.value for role in person.roles))
        return Actor(id=person.id, role=role), claims

    def policy_keeper(self, document: dict[str, Any], *, now: datetime) -> tuple[Actor, ActorClaims]:
        """The verified person asking to change the school's policy, if its *adopted* version lets them."""
        claims, policy = self._verified(document, now=now)
        person = policy.person(claims.person_id)
        held = {role.value for role in person.roles} if person else set()
        keeper = next((role for role in POLICY_KEEPERS if role in held), None)
        # A trust's administrator is usually outside the school; its DSL and headteacher never are.
        if person is None or keeper is None or (person.external and keeper != TRUST_ADMINISTRATOR):
            raise CommandRefused(
                "not_a_policy_keeper",
                f"{claims.person_id} may not adopt {claims.school_id}'s policy: the version in force lets only "
                f"{spoken(frozenset(POLICY_KEEPERS))} do that",
                claims=claims,
            )
        return Actor(id=person.id, role=keeper), claims

    def _verified(self, document: dict[str, Any], *, now: datetime) -> tuple[ActorClaims, Policy]:
        """The assertion's claims, for the school the command names, and that school's adopted policy."""
        if "actor" in document:
            raise CommandRefused(
                "claimed_actor", "a command may not name its own actor or role: it must carry a signed assertion"
            )
        try:
            claims = self.verifier.verify(document.get("assertion"), now=now)
        except TokenRefused as refused:
            raise CommandRefused(refused.code, refused.reason) from None
        school_id = document.get("school_id")
        if claims.school_id != school_id:
            raise CommandRefused(
                "wrong_school", f"the assertion is for school {claims.school_id}, not {school_id}", claims=claims
            )
        try:
            return claims, self.policies.current(claims.school_id)
        except UnknownSchool:
            raise CommandRefused("unknown_school", f"school {claims.school_id} has no adopted policy") from None

    def school_of(self, document: dict[str, Any], refused: CommandRefused) -> str | None:
        """The school a refusal is recorded for: the one the command named, if it has a policy."""
        for candidate in (document.get("school_id"), refused.claims.school_id if refused.claims else None):
            if isinstance(candidate, str) and self.policies.adopted(candidate):
                return candidate
        return None


async def claim_assertion(work: Work, claims: ActorClaims) -> None:
    """Mark the assertion used, in the caller's transaction; CommandRefused("replayed") if it was used before."""
    if not await work.claim(USED_ASSERTIONS, [claims.token_id]):
        reason = "this assertion was already used: each command needs a fresh one"
        raise CommandRefused("replayed", reason, claims=claims)


def refusal_event(document: dict[str, Any], refused: CommandRefused, *, school_id: str, now: datetime) -> Event[Any]:
    """The case.command_refused event recording `refused` for the school's ledger."""
    case_id = document.get("case_id")
    command = document.get("command")
    claims = refused.claims
    payload = CaseCommandRefusedPayload(
        case_id=case_id[:200] if isinstance(case_id, str) else "",
        command=command[:80] if isinstance(command, str) else "",
        code=refused.code,
        reason=refused.reason[:1000],
        issuer=claims.issuer if claims else "",
        person_id=claims.person_id if claims else "",
        token_id=str(claims.token_id) if claims else "",
    )
    aggregate = payload.case_id or f"commands:{school_id}"
    event: Event[Any] = CaseCommandRefused.new(
        payload, school_id=school_id, aggregate_id=aggregate, actor=ROUTING, occurred_at=now, event_id=uuid.uuid4()
    )
    return event


def log_refusal(document: dict[str, Any], refused: CommandRefused) -> None:
    """A warning naming ids only (the command, the case, the asker's id): never what the command said."""
    log.warning(
        "case command %s on %s refused (%s): asked by %s",
        str(document.get("command"))[:80],
        str(document.get("case_id"))[:200],
        refused.code,
        refused.claims.person_id if refused.claims else "nobody verified",
    )
