"""Case commands sent to routing over NATS request/reply, on behalf of the signed-in person.

`actor_assertion` is the one place that says who is asking. Today it states the person's id and role (the
role is the one their account holds, checked against the school's policy when the account was made); when
routing verifies signed actor tokens (the trust-boundaries issue) it returns the token instead and nothing
else here changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.console.access import Principal

log = logging.getLogger(__name__)

Request = Callable[[bytes], Awaitable[bytes]]

# The form fields each command may carry, besides case id, school and actor (the models are routing's:
# services/routing/case/commands.py); anything else a form sends is dropped.
COMMAND_FIELDS: dict[str, tuple[str, ...]] = {
    "acknowledge": (),
    "record_action": ("action", "details"),
    "decide_parent_notification": ("decision", "reason"),
    "record_decision": ("kind", "decision", "reasons", "advice", "agency"),
    "record_outcome": ("outcome", "summary"),
    "complete_investigation": ("summary",),
    "request_debrief": ("focus",),
    "close": ("summary",),
    "reopen": ("reason",),
}


def actor_assertion(principal: Principal) -> dict[str, Any]:
    """The fields that tell routing who asks (to become a signed, short-lived token)."""
    return {"actor": {"id": principal.person_id, "role": principal.role}}


def command_document(
    command: str, *, case_id: str, school_id: str, principal: Principal, form: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON routing reads for this command; an unknown command raises KeyError."""
    allowed = COMMAND_FIELDS[command]
    fields = {name: form[name] for name in allowed if form.get(name, "").strip()}
    return {"command": command, "case_id": case_id, "school_id": school_id, **fields, **actor_assertion(principal)}


class CaseCommands:
    """Sends a command and returns routing's reply (`{"ok": true, ...}` or `{"ok": false, "error": ...}`)."""

    def __init__(self, request: Request) -> None:
        self._request = request

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
