"""Case commands sent to routing over NATS request/reply, on behalf of the signed-in person.

`actor_assertion` is the one place that says who is asking: a short-lived token the console signs with its own
issuer key (`console.key` in the actor-keys folder) saying which signed-in person asks. It never names a role:
routing looks the person's role up in the school's policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.console.access import Principal
from shared.actor_tokens import issue

log = logging.getLogger(__name__)

Request = Callable[[bytes], Awaitable[bytes]]

# The form fields each command may carry, besides case id, school and actor (the models are routing's:
# services/routing/case/commands.py); anything else a form sends is dropped.
COMMAND_FIELDS: dict[str, tuple[str, ...]] = {
    "acknowledge": (),
    "record_action": ("action", "details"),
    "decide_parent_notification": ("decision", "reason"),
    "inform_parents": ("name", "relationship", "channel", "address"),
    "record_decision": ("kind", "decision", "reasons", "advice", "agency"),
    "record_outcome": ("outcome", "summary"),
    "complete_investigation": ("summary",),
    "request_debrief": ("focus",),
    "complete_debrief_action": ("action_id", "note"),
    "record_debrief": ("lessons_learnt",),
    "close": ("summary",),
    "reopen": ("reason",),
}

# Fields written one item a line in a textarea, sent as lists.
LIST_FIELDS: dict[str, tuple[str, ...]] = {"record_debrief": ("policy_changes", "curriculum_changes")}

ISSUER = "console"


def vouch(
    principal: Principal, *, key: Ed25519PrivateKey, audience: str, now: datetime, role: str | None = None
) -> str:
    """A fresh token, for `audience` only, saying the console signed this person in (at their home school)."""
    return issue(
        key,
        issuer=ISSUER,
        person_id=principal.person_id,
        school_id=principal.school_id,
        now=now,
        audience=audience,
        role=role,
    )


def actor_assertion(principal: Principal, *, key: Ed25519PrivateKey, school_id: str, now: datetime) -> dict[str, Any]:
    """The field that tells routing who asks: a signed, short-lived token for the signed-in person."""
    return {"assertion": issue(key, issuer=ISSUER, person_id=principal.person_id, school_id=school_id, now=now)}


def command_document(
    command: str,
    *,
    case_id: str,
    school_id: str,
    principal: Principal,
    form: Mapping[str, str],
    key: Ed25519PrivateKey,
    now: datetime,
) -> dict[str, Any]:
    """The JSON routing reads for this command; an unknown command raises KeyError."""
    allowed = COMMAND_FIELDS[command]
    fields: dict[str, Any] = {name: form[name] for name in allowed if form.get(name, "").strip()}
    for name in LIST_FIELDS.get(command, ()):
        lines = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        if lines:
            fields[name] = lines
    asking = actor_assertion(principal, key=key, school_id=school_id, now=now)
    return {"command": command, "case_id": case_id, "school_id": school_id, **fields, **asking}


class CaseCommands:
    """Sends a command and returns routing's reply (`{"ok": true, ...}` or `{"ok": false, "error": ...}`).

    The admin pages use another instance, on routing's policy subject, to ask for a policy's adoption.
    """

    def __init__(self, request: Request, *, key: Ed25519PrivateKey, clock: Callable[[], datetime]) -> None:
        self._request = request
        self._key = key
        self._clock = clock

    def assertion(self, principal: Principal, *, school_id: str) -> dict[str, Any]:
        """The signed statement of who asks, for a command this sender carries about `school_id`."""
        return actor_assertion(principal, key=self._key, school_id=school_id, now=self._clock())

    def document(
        self, command: str, *, case_id: str, school_id: str, principal: Principal, form: Mapping[str, str]
    ) -> dict[str, Any]:
        """The command as routing reads it, signed now on behalf of `principal`."""
        return command_document(
            command,
            case_id=case_id,
            school_id=school_id,
            principal=principal,
            form=form,
            key=self._key,
            now=self._clock(),
        )

    async def send(self, document: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self._request(json.dumps(document).encode())
            answer = json.loads(reply)
        except Exception as error:  # a timeout or no responder: say so, never a traceback with case details
            log.warning(
                "case command %s for case %s got no answer: %s",
                document.get("command"),
                document.get("case_id"),
                type(error).__name__,
            )
            return {"ok": False, "code": "unavailable", "error": "the case service did not answer; try again"}
        return answer if isinstance(answer, dict) else {"ok": False, "code": "invalid", "error": "unreadable answer"}
