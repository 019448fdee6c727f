"""Adopting a new version of a school's policy on request (NATS request/reply), for a verified person.

Routing owns adoption: the console only carries the file and a signed assertion of who asks. The asker must be
named in the school's policy *in force* as its trust administrator, DSL or headteacher; the file must load,
pass `policy check`'s refusals, be for that school, and raise the version (an edit without a higher version is
refused, as it is from the policy folder). The `policy.adopted` event names the person as its actor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats.message import NatsMessage

from services.routing.command_auth import CommandGate, CommandRefused, claim_assertion, log_refusal, refusal_event
from services.routing.policy.check import refusals
from services.routing.policy.load import PolicyError, parse_policy
from services.routing.policy_book import PolicyBook
from services.routing.store import Deadlines
from shared.runtime import ServiceRuntime
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

ADOPT = "adopt_policy"
POLICY_QUEUE = "routing-policy-commands"
LARGEST_POLICY = 1_000_000  # characters: the worked example is about 40 000


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.reply = {"ok": False, "code": code, "error": reason}


def _request(body: bytes | str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Refused("invalid", "the command is not JSON") from None
    if not isinstance(document, dict) or document.get("command") != ADOPT:
        raise _Refused("invalid", f"the policy subject answers {ADOPT!r} only")
    text = document.get("policy")
    if not isinstance(text, str) or not text.strip() or len(text) > LARGEST_POLICY:
        raise _Refused("invalid", "the command carries no policy file (YAML text, at most 1 MB)")
    return document


async def adopt_policy(
    body: bytes | str,
    *,
    uow: UnitOfWork,
    gate: CommandGate,
    book: PolicyBook,
    deadlines: Deadlines,
    now: datetime,
) -> dict[str, Any]:
    """Adopt the policy the request carries if its asker may and it is a valid new version; say what happened."""
    try:
        document = _request(body)
        actor = await _keeper(document, uow=uow, gate=gate, now=now)
        school_id = str(document["school_id"])
        text = str(document["policy"])
        try:
            policy = parse_policy(text, source="the uploaded policy")
        except PolicyError as error:
            raise _Refused("invalid", str(error)) from None
        if policy.school.id != school_id:
            raise _Refused("wrong_school", f"this file is the policy of {policy.school.id}, not {school_id}")
        refused = refusals(policy, text=text)
        if refused:
            raise _Refused("refused", "; ".join(refused))
        async with uow.begin() as work:
            why_not = await book.not_adoptable(policy, session=work.session)
            if why_not:
                raise _Refused("not_raised", why_not)
            work.emit(
                await book.adopt(
                    policy, session=work.session, deadlines=deadlines, now=now, source="console", actor=actor
                )
            )
    except _Refused as refusal:
        return refusal.reply
    except CommandRefused as refused:
        return {"ok": False, "code": refused.code, "error": refused.reason}
    log.info("policy v%d for %s adopted at the request of %s", policy.version, school_id, actor.id)
    return {"ok": True, "school_id": school_id, "version": policy.version, "digest": policy.digest}


async def _keeper(document: dict[str, Any], *, uow: UnitOfWork, gate: CommandGate, now: datetime) -> Any:
    """The verified policy keeper, their assertion marked used; a refusal is recorded in the school's ledger."""
    try:
        actor, claims = gate.policy_keeper(document, now=now)
        async with uow.begin() as work:
            await claim_assertion(work, claims)
        return actor
    except CommandRefused as refused:
        log_refusal(document, refused)
        school_id = gate.school_of(document, refused)
        if school_id is not None:
            async with uow.begin() as work:
                work.emit([refusal_event(document, refused, school_id=school_id, now=now)])
        raise


def register_policy_commands(
    runtime: ServiceRuntime, *, gate: CommandGate, book: PolicyBook, deadlines: Deadlines, clock: Callable[[], datetime]
) -> None:
    """Answer policy adoption requests on routing's request/reply subject."""

    @runtime.broker.subscriber(
        runtime.subjects.command("routing", "policy"),
        queue=POLICY_QUEUE,
        title="routing-policy-commands",
        description="Adopt a new policy version for a verified trust administrator, DSL or headteacher",
    )
    async def on_policy_command(body: Any, message: NatsMessage = Context("message")) -> dict[str, Any]:
        try:
            return await adopt_policy(
                message.body, uow=runtime.uow, gate=gate, book=book, deadlines=deadlines, now=clock()
            )
        except Exception:
            log.exception("a policy could not be adopted")
            return {"ok": False, "code": "unavailable", "error": "the policy could not be adopted just now; try again"}
