"""Case commands over NATS request/reply: load the case, decide, append at the expected version, reply.

The new events, the outbox rows and the case index change in one transaction; a writer that lost the race
reloads the case and decides again, so no update is lost and a command the new state refuses is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from faststream import Context
from faststream.nats.message import NatsMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.case import CaseCommand, CaseState, CommandRejected, StaleCommand, decide, fold, parse_command
from services.routing.case.commands import InformParents, describe_invalid
from services.routing.case.roles import DEPUTY, DSL, HEADTEACHER, case_managers, spoken
from services.routing.command_auth import CommandGate, CommandRefused, claim_assertion, log_refusal, refusal_event
from services.routing.debrief_listing import list_debrief_actions
from services.routing.debrief_reminders import track_debrief_actions
from services.routing.domain import STANDING_ALERT
from services.routing.parent_messages import parent_requests, parent_words
from services.routing.policy import ACKNOWLEDGE
from services.routing.policy_book import PolicyBook
from services.routing.store import CaseEvents, ConcurrencyConflict, Deadlines, SqlCaseEvents, SqlDeadlines
from shared.actor_tokens import ActorClaims
from shared.contracts.case_events import CaseAcknowledged
from shared.contracts.envelope import Actor, Event
from shared.runtime import ServiceRuntime
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
COMMAND_QUEUE = "routing-commands"
SHOW = "show"  # a query: reads the case, records nothing
ACTIONS = "debrief_actions"  # a query: the school's open debrief actions and its debriefs' policy changes
SEE_EVERY_ACTION = frozenset({DSL, DEPUTY, HEADTEACHER})
ATTEMPTS = 5
# Commands whose refusal goes into the school's ledger as case.command_refused, not only into the reply:
# a message to a parent that was asked for and not sent is part of the record.
RECORDED_REFUSALS = frozenset({"inform_parents"})


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


class _Unreadable(Exception):
    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(reply["error"])
        self.reply = reply


def _document(command_json: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The command as a JSON object; _Unreadable with the refusal to reply with otherwise."""
    if isinstance(command_json, dict):
        document: Any = command_json
    else:
        try:
            document = json.loads(command_json)
        except (ValueError, UnicodeDecodeError):
            raise _Unreadable(_refused("the command is not JSON", code="invalid")) from None
    if not isinstance(document, dict):
        raise _Unreadable(_refused("the command must be a JSON object", code="invalid"))
    return document


def _parse(document: dict[str, Any], actor: Actor) -> CaseCommand:
    """The command with its verified actor (the assertion itself is not part of it)."""
    fields = {key: value for key, value in document.items() if key != "assertion"}
    try:
        return parse_command({**fields, "actor": actor.model_dump()})
    except ValidationError as invalid:
        raise _Unreadable(_refused(describe_invalid(invalid), code="invalid")) from None


async def _attempt(
    command: CaseCommand,
    *,
    uow: UnitOfWork,
    case_events: SqlCaseEvents,
    deadlines: SqlDeadlines | None,
    clock: Clock,
    timezone: str,
    policies: PolicyBook,
) -> dict[str, Any]:
    """One try: everything in one transaction; ConcurrencyConflict when another writer got there first."""
    async with uow.begin() as work:
        now_state, events = await record_command(
            work.session,
            command,
            case_events=case_events,
            deadlines=deadlines,
            now=clock(),
            timezone=timezone,
            policies=policies,
        )
        work.emit(events)
    return _recorded(now_state, events)


async def record_command(
    session: AsyncSession,
    command: CaseCommand,
    *,
    case_events: CaseEvents,
    deadlines: Deadlines | None,
    now: datetime,
    timezone: str = "Europe/London",
    policies: PolicyBook | None = None,
) -> tuple[CaseState, list[Event[Any]]]:
    """Decide `command` on the case and append its events at the expected version, in the caller's transaction.

    Returns the case as it now stands and the new events (none when the command changes nothing); the caller
    puts the events in the outbox (with the `deadline.set` of any debrief action's reminder, timed in the
    school's `timezone`, and the `notification.requested` to a parent informed, in the words of the case's
    policy version from `policies`). Raises CommandRejected, StaleCommand or ConcurrencyConflict.
    """
    state = fold(await case_events.load(session, command.case_id))
    words = None
    if isinstance(command, InformParents) and policies is not None and state.opened:
        words = await parent_words(state, policies=policies, session=session)
    events = decide(state, command, now=now, actor=command.actor, parent_message=words)
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
    if deadlines is not None:
        events = events + await track_debrief_actions(session, events, deadlines=deadlines, timezone=timezone, now=now)
    return now_state, [*events, *parent_requests(events, state=now_state)]


async def execute(
    command_json: bytes | str | dict[str, Any],
    *,
    uow: UnitOfWork,
    case_events: SqlCaseEvents,
    clock: Clock,
    gate: CommandGate,
    deadlines: SqlDeadlines | None = None,
) -> dict[str, Any]:
    """Carry out one case command and say what it recorded: `{"ok": true, ...}` or `{"ok": false, "error": ...}`."""
    try:
        document = _document(command_json)
        actor, claims = await _asker(document, uow=uow, gate=gate, now=clock())
        if document.get("command") == SHOW:
            return await show(document, actor=actor, uow=uow, case_events=case_events)
        if document.get("command") == ACTIONS:
            return await debrief_actions(document, actor=actor, uow=uow, gate=gate, now=clock())
        command = _parse(document, actor)
    except _Unreadable as unreadable:
        return unreadable.reply
    except CommandRefused as refused:
        return _refused(refused.reason, code=refused.code)
    timezone = gate.policies.current(command.school_id).working_days.timezone
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await _attempt(
                command,
                uow=uow,
                case_events=case_events,
                deadlines=deadlines,
                clock=clock,
                timezone=timezone,
                policies=gate.policies,
            )
        except StaleCommand as stale:
            return _refused(stale.reason, code="conflict", case_id=command.case_id)
        except CommandRejected as rejected:
            if command.command in RECORDED_REFUSALS:
                await _record_refusal(document, rejected, claims=claims, uow=uow, now=clock())
            return _refused(rejected.reason, code="refused", case_id=command.case_id)
        except ConcurrencyConflict:
            log.info("case %s changed under %s (attempt %d); deciding again", command.case_id, command.command, attempt)
    return _refused(
        "the case kept changing while this was recorded; reload it and try again",
        code="conflict",
        case_id=command.case_id,
    )


async def _asker(
    document: dict[str, Any], *, uow: UnitOfWork, gate: CommandGate, now: datetime
) -> tuple[Actor, ActorClaims]:
    """The verified actor, its assertion marked used; a refusal is recorded in the school's ledger, then raised."""
    try:
        actor, claims = gate.actor(document, now=now)
        async with uow.begin() as work:
            await claim_assertion(work, claims)
        return actor, claims
    except CommandRefused as refused:
        log_refusal(document, refused)
        school_id = gate.school_of(document, refused)
        if school_id is not None:
            async with uow.begin() as work:
                work.emit([refusal_event(document, refused, school_id=school_id, now=now)])
        raise


async def _record_refusal(
    document: dict[str, Any], rejected: CommandRejected, *, claims: ActorClaims, uow: UnitOfWork, now: datetime
) -> None:
    """The workflow's refusal as case.command_refused, in its own transaction (the command's was rolled back)."""
    refused = CommandRefused(rejected.code, rejected.reason, claims=claims)
    log_refusal(document, refused)
    async with uow.begin() as work:
        work.emit([refusal_event(document, refused, school_id=claims.school_id, now=now)])


async def show(
    document: dict[str, Any], *, actor: Actor, uow: UnitOfWork, case_events: SqlCaseEvents
) -> dict[str, Any]:
    """The case as it stands and its history, for someone who may manage it."""
    case_id = str(document.get("case_id", ""))
    async with uow.sessions() as session:
        history = await case_events.load(session, case_id)
    state = fold(history)
    if not state.opened or state.school_id != document.get("school_id"):
        return _refused(f"no case {case_id} at {document.get('school_id')}", code="refused", case_id=case_id)
    managers = case_managers(state)
    if actor.role not in managers:
        return _refused(f"only {spoken(managers)} may read a case; you are {actor.role}", code="refused")
    return {
        "ok": True,
        "case_id": state.case_id,
        "case": json.loads(json.dumps(dataclasses.asdict(state), default=str)),
        "history": [
            {"version": number, "type": e.type, "occurred_at": e.occurred_at.isoformat(), "by": e.actor.id}
            for number, e in enumerate(history, start=1)
        ],
    }


async def debrief_actions(
    document: dict[str, Any], *, actor: Actor, uow: UnitOfWork, gate: CommandGate, now: datetime
) -> dict[str, Any]:
    """The school's open debrief actions: every one for its safeguarding leads and head, one's own for others."""
    school_id = str(document.get("school_id"))
    today = now.astimezone(ZoneInfo(gate.policies.current(school_id).working_days.timezone)).date()
    owner = None if actor.role in SEE_EVERY_ACTION else actor.id
    async with uow.sessions() as session:
        return await list_debrief_actions(
            session, school_id=school_id, today=today, overdue_only=bool(document.get("overdue")), owner=owner
        )


def register_commands(runtime: ServiceRuntime, *, clock: Clock, gate: CommandGate) -> None:
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
                gate=gate,
            )
        except Exception:
            log.exception("a case command could not be recorded")
            return _refused("the case could not be updated just now; try again", code="unavailable")
        return reply
