"""Case commands over NATS request/reply: load the case, decide, append at the expected version, reply.

The new events, the outbox rows and the case index change in one transaction; a writer that lost the race
reloads the case and decides again, so no update is lost and a command the new state refuses is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats.message import NatsMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.case import CaseCommand, CaseState, CommandRejected, StaleCommand, decide, fold, parse_command
from services.routing.case.commands import describe_invalid
from services.routing.domain import ACKNOWLEDGE, STANDING_ALERT
from services.routing.store import ConcurrencyConflict, SqlCaseEvents, SqlDeadlines
from shared.contracts.case_events import CaseAcknowledged
from shared.contracts.envelope import Event
from shared.runtime import ServiceRuntime
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
COMMAND_QUEUE = "routing-commands"
ATTEMPTS = 5


def _refused(error: str, *, code: str, case_id: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "code": code, "error": error}
    if case_id is not None:
        reply["case_id"] = case_id
    return reply


def _recorded(state: CaseState, events: list[Event[Any]]) -> dict[str, Any]:
    return {
        "ok": True,
        "case_id": state.case_id,
        "version": state.version,
        "status": state.status,
        "events": [event.type for event in events],
    }


def _read(command_json: bytes | str | dict[str, Any]) -> CaseCommand | dict[str, Any]:
    """The command, or the refusal to reply with when it cannot be read."""
    if isinstance(command_json, dict):
        document: Any = command_json
    else:
        try:
            document = json.loads(command_json)
        except (ValueError, UnicodeDecodeError):
            return _refused("the command is not JSON", code="invalid")
    if not isinstance(document, dict):
        return _refused("the command must be a JSON object", code="invalid")
    try:
        return parse_command(document)
    except ValidationError as invalid:
        return _refused(describe_invalid(invalid), code="invalid")


async def _attempt(
    command: CaseCommand,
    *,
    uow: UnitOfWork,
    case_events: SqlCaseEvents,
    deadlines: SqlDeadlines | None,
    clock: Clock,
) -> dict[str, Any]:
    """One try: everything in one transaction; ConcurrencyConflict when another writer got there first."""
    async with uow.begin() as work:
        now_state, events = await record_command(
            work.session, command, case_events=case_events, deadlines=deadlines, now=clock()
        )
        work.emit(events)
    return _recorded(now_state, events)


async def record_command(
    session: AsyncSession,
    command: CaseCommand,
    *,
    case_events: SqlCaseEvents,
    deadlines: SqlDeadlines | None,
    now: datetime,
) -> tuple[CaseState, list[Event[Any]]]:
    """Decide `command` on the case and append its events at the expected version, in the caller's transaction.

    Returns the case as it now stands and the new events (none when the command changes nothing); the caller
    puts the events in the outbox. Raises CommandRejected, StaleCommand or ConcurrencyConflict.
    """
    state = fold(await case_events.load(session, command.case_id))
    events = decide(state, command, now=now, actor=command.actor)
    if not events:
        return state, events
    version = await case_events.append(session, case_id=state.case_id, events=events, expected_version=state.version)
    now_state = fold(events, state=state)
    await case_events.index(
        session,
        case_id=now_state.case_id,
        school_id=now_state.school_id,
        reference=now_state.reference,
        version=version,
        status=now_state.status,
        policy_version=now_state.policy_version,
        opened_at=now_state.opened_at or now,
    )
    if deadlines is not None and any(isinstance(event, CaseAcknowledged) for event in events):
        # The case is in hand: nobody further up the escalation ladder needs to be told.
        # The standing alert (the ladder ran out) stops too.
        await deadlines.cancel_for_case(session, case_id=state.case_id, kinds=[ACKNOWLEDGE, STANDING_ALERT], at=now)
    return now_state, events


async def execute(
    command_json: bytes | str | dict[str, Any],
    *,
    uow: UnitOfWork,
    case_events: SqlCaseEvents,
    clock: Clock,
    deadlines: SqlDeadlines | None = None,
) -> dict[str, Any]:
    """Carry out one case command and say what it recorded: `{"ok": true, ...}` or `{"ok": false, "error": ...}`."""
    command = _read(command_json)
    if isinstance(command, dict):
        return command
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await _attempt(command, uow=uow, case_events=case_events, deadlines=deadlines, clock=clock)
        except StaleCommand as stale:
            return _refused(stale.reason, code="conflict", case_id=command.case_id)
        except CommandRejected as rejected:
            return _refused(rejected.reason, code="refused", case_id=command.case_id)
        except ConcurrencyConflict:
            log.info("case %s changed under %s (attempt %d); deciding again", command.case_id, command.command, attempt)
    return _refused(
        "the case kept changing while this was recorded; reload it and try again",
        code="conflict",
        case_id=command.case_id,
    )


def register_commands(runtime: ServiceRuntime, *, clock: Clock) -> None:
    """Answer case commands on routing's request/reply subject; instances share the work in one queue group."""
    case_events = SqlCaseEvents()
    deadlines = SqlDeadlines()

    @runtime.broker.subscriber(
        runtime.subjects.command("routing", "case"),
        queue=COMMAND_QUEUE,
        title="routing-case-commands",
        description="Case workflow commands from the console (request/reply)",
    )
    async def on_case_command(body: Any, message: NatsMessage = Context("message")) -> dict[str, Any]:
        try:
            reply = await execute(
                message.body,
                uow=runtime.uow,
                case_events=case_events,
                deadlines=deadlines,
                clock=clock,
            )
        except Exception:
            log.exception("a case command could not be recorded")
            return _refused("the case could not be updated just now; try again", code="unavailable")
        return reply
