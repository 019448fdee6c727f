"""In-memory stand-ins for each service's SQL store, held to its contract by tests/integration/test_store_contracts.py.

Each fake takes the session argument its Protocol names and ignores it, so handlers run over them unchanged with a
`fake_work()` whose session is None. Nothing here is transactional: a handler test looks at the fake afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain import GENESIS, ChainEntry, entry_hash
from services.intake.store import Acceptance, Arrived, RawInput, StuckInput
from services.routing.failure_store import FailedNotification
from services.routing.store import AdoptedPolicy, ConcurrencyConflict, DueDeadline, OpenedCase
from shared.contracts.envelope import Event
from shared.contracts.events import ConcernReceived
from shared.inbox_outbox import InboxOutbox
from shared.unit_of_work import Claim, Work


def fake_work() -> Work:
    """A unit of work with no database behind it: handlers over fakes collect their events in `.emitted`."""
    return Work(session=cast(AsyncSession, None), tables=cast(InboxOutbox, None))


@dataclass
class _MemoryWork(Work):
    handled: dict[str, set[uuid.UUID]] = field(default_factory=dict)

    async def claim(self, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        seen = self.handled.setdefault(consumer, set())
        fresh = set(event_ids) - seen
        seen.update(fresh)
        return fresh


class InMemoryUnitOfWork:
    """Stands in for shared.unit_of_work.UnitOfWork with no database: inbox claims in a dict, commits in a list."""

    def __init__(self, *_: object, **__: object) -> None:
        self.handled: dict[str, set[uuid.UUID]] = {}
        self.committed: list[Work] = []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Work]:
        work = _MemoryWork(session=cast(AsyncSession, None), tables=cast(InboxOutbox, None), handled=self.handled)
        yield work
        self.committed.append(work)

    single_statement = begin  # a claim left to the handler's statement is made by `_MemoryWork.claim` (see wiring)


def _clash(what: str) -> IntegrityError:
    return IntegrityError(what, params=None, orig=Exception(what))


class FakeCaseEvents:
    """Case streams and the case index in dictionaries (with the deadlines that `open_all` sets, if it sets any)."""

    def __init__(self, deadlines: FakeDeadlines | None = None) -> None:
        self.deadlines = deadlines
        self.streams: dict[str, list[Event[Any]]] = {}
        self.cases: dict[str, dict[str, Any]] = {}

    async def load(self, session: object, case_id: str) -> list[Event[Any]]:
        return list(self.streams.get(case_id, []))

    async def append(
        self, session: object, *, case_id: str, events: Sequence[Event[Any]], expected_version: int
    ) -> int:
        stream = self.streams.setdefault(case_id, [])
        if not events:
            return expected_version
        known = {e.event_id for s in self.streams.values() for e in s}
        if len(stream) != expected_version or any(e.event_id in known for e in events):
            raise ConcurrencyConflict(f"case {case_id} moved past version {expected_version}")
        stream.extend(events)
        return len(stream)

    async def index(
        self,
        session: object,
        *,
        case_id: str,
        school_id: str,
        reference: str,
        version: int,
        status: str,
        policy_version: int,
        opened_at: datetime,
    ) -> None:
        if case_id in self.cases:
            self.cases[case_id].update(version=version, status=status)
            return
        self.cases[case_id] = {
            "school_id": school_id,
            "reference": reference,
            "version": version,
            "status": status,
            "policy_version": policy_version,
            "opened_at": opened_at,
        }

    async def advance(self, session: object, *, case_id: str, version: int, status: str | None = None) -> None:
        if case_id in self.cases:
            self.cases[case_id].update(version=version, **({"status": status} if status is not None else {}))

    async def open_all(
        self,
        session: object,
        opened: Sequence[OpenedCase],
        *,
        due: Sequence[DueDeadline] = (),
        work: object = None,
        causes: object = None,
    ) -> None:
        if due:
            assert self.deadlines is not None, "FakeCaseEvents(deadlines=...) sets the deadlines it is given"
            await self.deadlines.set_all(session, due)
        for case in opened:
            version = await self.append(session, case_id=case.case_id, events=case.events, expected_version=0)
            await self.index(
                session,
                case_id=case.case_id,
                school_id=case.school_id,
                reference=case.reference,
                version=version,
                status="open",
                policy_version=case.policy_version,
                opened_at=case.opened_at,
            )


@dataclass
class _Deadline:
    due: DueDeadline
    status: str = "pending"
    fired_at: datetime | None = None


class FakeDeadlines:
    """The due-table as a dictionary by deadline id."""

    def __init__(self) -> None:
        self.rows: dict[str, _Deadline] = {}

    async def set(
        self,
        session: object,
        *,
        deadline_id: str,
        school_id: str,
        case_id: str,
        kind: str,
        due_at: datetime,
        detail: dict[str, Any],
    ) -> None:
        if deadline_id not in self.rows:
            self.rows[deadline_id] = _Deadline(DueDeadline(deadline_id, school_id, case_id, kind, due_at, dict(detail)))

    async def set_all(self, session: object, rows: Sequence[DueDeadline]) -> None:
        for row in rows:
            if row.deadline_id not in self.rows:
                self.rows[row.deadline_id] = _Deadline(replace(row, detail=dict(row.written_detail()), cause=None))

    async def claim_due(self, session: object, *, now: datetime, limit: int = 50) -> list[DueDeadline]:
        due = [r.due for r in self.rows.values() if r.status == "pending" and r.due.due_at <= now]
        return sorted(due, key=lambda d: d.due_at)[:limit]

    async def close(self, session: object, *, deadline_id: str, status: str, at: datetime) -> None:
        if deadline_id in self.rows:
            self.rows[deadline_id] = replace(self.rows[deadline_id], status=status, fired_at=at)

    async def cancel_for_case(
        self,
        session: object,
        *,
        case_id: str,
        kinds: Sequence[str],
        at: datetime,
        matching: Mapping[str, str] | None = None,
    ) -> int:
        pending = [
            r
            for r in self.rows.values()
            if r.due.case_id == case_id
            and r.due.kind in kinds
            and r.status == "pending"
            and all(r.due.detail.get(key) == value for key, value in (matching or {}).items())
        ]
        for row in pending:
            await self.close(session, deadline_id=row.due.deadline_id, status="cancelled", at=at)
        return len(pending)

    async def pending(self, session: object, *, case_ids: Sequence[str], kind: str) -> dict[str, DueDeadline]:
        waiting = [r.due for r in self.rows.values() if r.due.case_id in case_ids and r.due.kind == kind]
        waiting = [d for d in waiting if self.rows[d.deadline_id].status == "pending"]
        return {d.case_id: d for d in sorted(waiting, key=lambda d: d.due_at, reverse=True)}

    async def bring_forward(self, session: object, *, deadline_ids: Sequence[str], to: datetime) -> None:
        for deadline_id in deadline_ids:
            row = self.rows.get(deadline_id)
            if row is not None and row.status == "pending" and row.due.due_at > to:
                self.rows[deadline_id] = replace(row, due=replace(row.due, due_at=to))

    def status(self, deadline_id: str) -> str:
        return self.rows[deadline_id].status


class FakeNotificationFailures:
    """Failed notification ids by case."""

    def __init__(self) -> None:
        self.by_case: dict[str, set[str]] = {}
        self.claimed: set[uuid.UUID] = set()

    async def record(
        self, session: object, failed: Sequence[FailedNotification], *, at: datetime
    ) -> dict[str, set[str]]:
        earlier = {f.case_id: set(self.by_case.get(f.case_id, ())) for f in failed}
        for f in failed:
            self.by_case.setdefault(f.case_id, set()).add(f.notification_id)
        return earlier

    async def record_claiming(
        self, session: object, failed: Sequence[FailedNotification], *, at: datetime, claim: Claim
    ) -> tuple[dict[str, set[str]], set[uuid.UUID]]:
        fresh = set(claim.event_ids) - self.claimed
        self.claimed |= fresh
        return await self.record(session, failed, at=at), fresh


class FakePolicyVersions:
    """Adopted policy versions by (school, version)."""

    def __init__(self) -> None:
        self.adopted: dict[tuple[str, int], AdoptedPolicy] = {}

    async def latest(self, session: object, *, school_id: str) -> AdoptedPolicy | None:
        versions = [p for (school, _), p in self.adopted.items() if school == school_id]
        return max(versions, key=lambda p: p.version, default=None)

    async def get(self, session: object, *, school_id: str, version: int) -> AdoptedPolicy | None:
        return self.adopted.get((school_id, version))

    async def record(self, session: object, policy: AdoptedPolicy, *, adopted_at: datetime) -> None:
        key = (policy.school_id, policy.version)
        if key in self.adopted:
            raise _clash(f"policy {key} adopted twice")
        self.adopted[key] = policy


class FakeLedger:
    """Each school's hash chain as a list, linked exactly as the SQL ledger links it."""

    def __init__(self) -> None:
        self.chains: dict[str, list[ChainEntry]] = {}

    async def append(
        self,
        session: object,
        events: Sequence[Event[Any]],
        *,
        stream_sequences: Mapping[uuid.UUID, int] | None = None,
    ) -> dict[str, int]:
        # In stream order when the sequences are known, as the SQL ledger chains them.
        if stream_sequences:
            events = sorted(events, key=lambda event: stream_sequences.get(event.event_id, 0))
        recorded = {entry.event["event_id"]: school for school, chain in self.chains.items() for entry in chain}
        heads: dict[str, int] = {}
        for event in events:
            chain = self.chains.setdefault(event.school_id, [])
            if (school := recorded.get(str(event.event_id))) is not None:
                if school != event.school_id:  # the SQL ledger's unique event id refuses it
                    raise ValueError(f"event {event.event_id} is chained under another school")
                heads[event.school_id] = len(chain)  # the ledger is audit's inbox: an event is recorded once
                continue
            recorded[str(event.event_id)] = event.school_id
            sequence, previous = (chain[-1].school_sequence, chain[-1].entry_hash) if chain else (0, GENESIS)
            document = event.model_dump(mode="json")
            digest = entry_hash(previous_hash=previous, school_sequence=sequence + 1, event=document)
            chain.append(ChainEntry(sequence + 1, document, previous, digest))
            heads[event.school_id] = sequence + 1
        return heads

    async def chain(self, session: object, *, school_id: str) -> list[ChainEntry]:
        return list(self.chains.get(school_id, []))


@dataclass
class _Raw:
    school_id: str
    channel: str
    idempotency_key: str | None
    body: bytes
    status: str = "received"
    reference: str | None = None
    rejection_reason: str | None = None


@dataclass
class FakeIntakeStore:
    """Raw inputs and accepted concerns in dictionaries."""

    raw: dict[uuid.UUID, _Raw] = field(default_factory=dict)
    concerns: dict[str, ConcernReceived] = field(default_factory=dict)

    async def keep_raw(
        self,
        session: object,
        *,
        school_id: str,
        channel: str,
        content_type: str,
        body: bytes,
        received_at: datetime,
        idempotency_key: str | None,
    ) -> RawInput:
        if idempotency_key is not None:
            for raw_input_id, raw in self.raw.items():
                if (raw.school_id, raw.channel, raw.idempotency_key) == (school_id, channel, idempotency_key):
                    return RawInput(raw_input_id, raw.status, raw.reference, raw.rejection_reason)
        raw_input_id = uuid.uuid4()
        self.raw[raw_input_id] = _Raw(school_id, channel, idempotency_key, body)
        return RawInput(raw_input_id, "received", None, None)

    async def reject(self, session: object, *, raw_input_id: uuid.UUID, reason: str) -> bool:
        raw = self.raw.get(raw_input_id)
        if raw is None or raw.status != "received":
            return False
        raw.status, raw.rejection_reason = "rejected", reason
        return True

    async def stuck(self, session: object, *, before: datetime, limit: int) -> list[StuckInput]:
        return []  # the fake keeps no arrival times: the sweeper is tested against PostgreSQL

    async def reference_of(self, session: object, *, raw_input_id: uuid.UUID) -> str | None:
        return next((ref for ref, e in self.concerns.items() if e.payload.raw_input_id == str(raw_input_id)), None)

    async def keep_raw_all(self, session: object, arrived: Sequence[Arrived]) -> list[RawInput]:
        return [
            await self.keep_raw(
                session,
                school_id=a.school_id,
                channel=a.channel,
                content_type=a.content_type,
                body=a.body,
                received_at=a.received_at,
                idempotency_key=a.idempotency_key,
            )
            for a in arrived
        ]

    async def accept_all(
        self, session: object, acceptances: Sequence[Acceptance], *, work: object = None
    ) -> list[bool]:
        return [await self.accept(session, a.event, receipt_sha256=a.receipt_sha256) for a in acceptances]

    async def accept(self, session: object, event: ConcernReceived, *, receipt_sha256: str | None = None) -> bool:
        payload = event.payload
        if payload.reference in self.concerns:
            return False
        if await self.reference_of(session, raw_input_id=uuid.UUID(payload.raw_input_id)) is not None:
            raise _clash("a raw input is accepted once")
        self.concerns[payload.reference] = event
        raw = self.raw[uuid.UUID(payload.raw_input_id)]
        raw.status, raw.reference = "accepted", payload.reference
        return True
