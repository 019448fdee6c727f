"""Whether Safeguard may send a parent or carer the school's message on a case, and what sending it records.

Pure. The message goes only when all of these hold, checked in this order (the first that fails is the reason):
1. a DSL or a deputy asks;
2. the case is not about an adult who works with children (those families hear through the allegations
   procedure, never from Safeguard);
3. nothing says telling the parents could put a child at risk, and no parent or carer is who it is about;
4. triage did not decide parents must not be told by the system (a DSL who overrides that tells them in person);
5. the case's parents decision is `inform` (the policy's at triage, or a DSL's decision with its reason);
6. the school's policy has words for parents (`notifications.parent_message`);
7. the same address was not already sent the message on this case (one message per parent and address).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from services.routing.case.commands import InformParents
from services.routing.case.refusals import CommandRejected, must_be
from services.routing.case.roles import SAFEGUARDING_LEADS
from services.routing.case.state import CaseState
from services.routing.policy import floor
from shared.contracts import case_events as ev
from shared.contracts.concern import ADULTS_WORKING_WITH_CHILDREN, PersonRole
from shared.contracts.envelope import Actor, Event
from shared.contracts.parent_message import ParentMessage

_NAMESPACE = uuid.UUID("0c7f5d8e-54a1-4f0b-9d8e-6a1b2c3d4e5f")
PARENT_ROLE = PersonRole.parent_carer.value
_ADULT_ROLES = frozenset(role.value for role in ADULTS_WORKING_WITH_CHILDREN)
_RISK = frozenset({floor.PARENTS_RISK, floor.PARENTS_HARM})
_SPOKEN_DECISION = {
    "withhold": "that parents are not informed",
    "not_applicable": "that telling parents does not apply",
}


def parent_id_for(case_id: str, *, version: int) -> str:
    """The id a parent or carer is told under: made for this case and command, naming nobody."""
    return f"parent-{uuid.uuid5(_NAMESPACE, f'{case_id}|{version}').hex[:20]}"


def notification_id_for(case_id: str, *, parent_id: str, channel: str) -> str:
    """The one message an inform-parents command asks for (the same causes give the same id)."""
    return str(uuid.uuid5(_NAMESPACE, f"notification|{case_id}|{parent_id}|{channel}"))


def _about_staff(state: CaseState) -> str | None:
    if state.case_type != "concern":
        return f"this case is a {state.case_type.replace('_', ' ')}"
    if state.adults_about or floor.PARENTS_ADULT in state.parents_floor:
        return "the concern is, or may be, about one of the school's adults"
    if any(p.role in _ADULT_ROLES for p in state.people_it_is_about()):
        return "an adult who works with children is named in it as subject or alleged perpetrator"
    return None


def _refuse_unsafe(state: CaseState) -> None:
    """CommandRejected when telling the family could be unsafe, whatever the parents decision says now."""
    staff = _about_staff(state)
    if staff is not None:
        raise CommandRejected(
            f"{staff}: Safeguard never messages parents about an allegation against an adult; the allegations "
            "procedure (with the LADO) decides what families are told",
            code="about_staff",
        )
    if _RISK & set(state.parents_floor):
        raise CommandRejected(
            "the report says telling the parents could put the child at greater risk, or that the harm may come "
            "from a parent or carer: Safeguard will not message them on this case",
            code="child_at_risk",
        )
    parent_about = any(p.role == PARENT_ROLE for p in state.people_it_is_about())
    if parent_about or floor.PARENTS_PARENT_SUBJECT in state.parents_floor:
        raise CommandRejected(
            "a parent or carer is who this concern is about: Safeguard will not message parents on this case",
            code="child_at_risk",
        )
    if state.parents_at_triage == "must_not_tell":
        raise CommandRejected(
            f"triage decided parents must not be told by the system ({state.parents_reason or 'no reason given'}); "
            "if you decide they should know, tell them yourself and record it as the action parents_contacted",
            code="must_not_tell",
        )


def inform_parents(
    state: CaseState, command: InformParents, actor: Actor, *, words: ParentMessage | None
) -> list[tuple[type[Event[Any]], BaseModel]]:
    """The case.parents_informed to record; CommandRejected (with its code) when the message must not go."""
    must_be(actor, SAFEGUARDING_LEADS, to="have the school's message sent to parents")
    _refuse_unsafe(state)
    if state.parents != "inform":
        if state.parents_at_triage == "dsl_decides" and state.parents == "withhold":
            decided = "the DSL decides whether parents are told, and nobody has decided to inform them yet"
        else:
            decided = f"the case's decision is {_SPOKEN_DECISION.get(state.parents, state.parents)}"
        raise CommandRejected(
            f"{decided}: record a decision to inform them, with the reason, first", code="parents_not_informed"
        )
    if words is None:
        raise CommandRejected(
            f"the school's policy (version {state.policy_version}) has no words for parents "
            "(notifications.parent_message): Safeguard has nothing of the school's to send",
            code="no_parent_message",
        )
    asked = (command.channel, command.address.casefold())
    sent = next((p for p in state.parents_informed if (p.channel, p.address.casefold()) == asked), None)
    if sent is not None:
        what = "email address" if sent.channel == "email" else "number"
        raise CommandRejected(
            f"the school's message already went to this {what} on {sent.informed_at:%d %b %Y %H:%M}: it is not sent "
            "twice",
            code="already_informed",
        )
    parent_id = parent_id_for(state.case_id, version=state.version)
    payload = ev.CaseParentsInformedPayload(
        case_id=state.case_id,
        parent_id=parent_id,
        name=command.name,
        relationship=command.relationship,
        channel=command.channel,
        address=command.address,
        notification_id=notification_id_for(state.case_id, parent_id=parent_id, channel=command.channel),
        policy_version=state.policy_version,
        words=words,
        basis=state.parents_reason,
    )
    return [(ev.CaseParentsInformed, payload)]
