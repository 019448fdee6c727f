"""Routing's schema: the case event store (optimistic concurrency), the case index, policies, deadlines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.routing.statements import BRING_FORWARD, OPEN_ALL, OPEN_ALL_CLAIMING, PENDING, SCHEMA, SET_ALL
from shared.contracts.envelope import Event, parse_event
from shared.inbox_outbox import outbox_parameters, written_rows
from shared.unit_of_work import Work

metadata = sa.MetaData(schema=SCHEMA)

case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    # The event's JSON text as published: read whole and parsed in Python, never queried inside (migration 0004).
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False, unique=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("policy_version", sa.Integer, nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("school_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("document", JSONB, nullable=False),
    sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
)

deadlines = sa.Table(
    "deadlines",
    metadata,
    sa.Column("deadline_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("detail", JSONB, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True)),
    sa.Index("deadlines_pending", "due_at", postgresql_where=sa.text("status = 'pending'")),
)

notification_failures = sa.Table(
    "notification_failures",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_notification_failures_case_id", "case_id"),
)

dead_letter_alerts = sa.Table(
    "dead_letter_alerts",
    metadata,
    sa.Column("school_id", sa.Text, primary_key=True),
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("parked", sa.Integer, nullable=False),
)


class ConcurrencyConflict(Exception):
    """Another writer appended to the case first; reload and decide again."""


@dataclass(frozen=True)
class OpenedCase:
    """A new case: its first events (versions 1..n) and its index row."""

    case_id: str
    school_id: str
    reference: str
    events: Sequence[Event[Any]]
    policy_version: int
    opened_at: datetime


class CaseEvents(Protocol):
    """What routing asks of its case event store (`SqlCaseEvents`; a fake in tests/support/fakes.py)."""

    async def load(self, session: AsyncSession, case_id: str) -> list[Event[Any]]: ...

    async def append(
        self, session: AsyncSession, *, case_id: str, events: Sequence[Event[Any]], expected_version: int
    ) -> int: ...

    async def index(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        school_id: str,
        reference: str,
        version: int,
        status: str,
        policy_version: int,
        opened_at: datetime,
    ) -> None: ...

    async def advance(
        self, session: AsyncSession, *, case_id: str, version: int, status: str | None = None
    ) -> None: ...

    async def open_all(
        self,
        session: AsyncSession,
        opened: Sequence[OpenedCase],
        *,
        due: Sequence[DueDeadline] = (),
        work: Work | None = None,
        causes: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> None: ...


class SqlCaseEvents:
    """The case aggregate's events, appended at an expected version."""

    async def load(self, session: AsyncSession, case_id: str) -> list[Event[Any]]:
        rows = await session.execute(
            sa.select(case_events.c.event).where(case_events.c.case_id == case_id).order_by(case_events.c.version)
        )
        return [parse_event(row.event) for row in rows]

    async def append(
        self, session: AsyncSession, *, case_id: str, events: Sequence[Event[Any]], expected_version: int
    ) -> int:
        """Append after `expected_version` (0 for a new case); raises ConcurrencyConflict if someone got there first."""
        if not events:
            return expected_version
        rows = [
            {
                "case_id": case_id,
                "version": expected_version + offset,
                "school_id": event.school_id,
                "event_id": event.event_id,
                "event_type": event.type,
                "event": event.model_dump_json(),
            }
            for offset, event in enumerate(events, start=1)
        ]
        try:
            # The whole unit of work rolls back on a conflict (no savepoint: it would cost two round trips on
            # every append to spare a retry that is rare), and the caller decides again in a new one.
            await session.execute(sa.insert(case_events), rows)
        except IntegrityError as clash:
            raise ConcurrencyConflict(f"case {case_id} moved past version {expected_version}") from clash
        return expected_version + len(events)

    async def index(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        school_id: str,
        reference: str,
        version: int,
        status: str,
        policy_version: int,
        opened_at: datetime,
    ) -> None:
        """Keep the case index (reference -> case, status, version) current."""
        await session.execute(
            insert(cases)
            .values(
                case_id=case_id,
                school_id=school_id,
                reference=reference,
                version=version,
                status=status,
                policy_version=policy_version,
                opened_at=opened_at,
            )
            .on_conflict_do_update(index_elements=[cases.c.case_id], set_={"version": version, "status": status})
        )

    async def advance(self, session: AsyncSession, *, case_id: str, version: int, status: str | None = None) -> None:
        """Move the case index to `version` (and `status`) after routing itself appended to the case."""
        values: dict[str, Any] = {"version": version}
        if status is not None:
            values["status"] = status
        await session.execute(sa.update(cases).where(cases.c.case_id == case_id).values(**values))

    async def open_all(
        self,
        session: AsyncSession,
        opened: Sequence[OpenedCase],
        *,
        due: Sequence[DueDeadline] = (),
        work: Work | None = None,
        causes: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> None:
        """Append each new case's first events and index it `open`, and set the pending deadlines `due` (a
        deadline id already set is left as it is), one statement for them all; raises ConcurrencyConflict if any of
        the cases already has events. With `work` (whose session this is), the events it has emitted go into the
        outbox in the same statement: each event is serialised once, for every table it goes in. When the work
        leaves its claim to this statement, `causes` names the concern each event came from (by event id): only
        what freshly claimed concerns led to is written (a case by its first event, a deadline by its case)."""
        claim = work.take_claim() if work is not None else None
        if not opened and not due and claim is None:
            return
        published = work.take_emitted() if work is not None else []
        written: list[Event[Any]] = list(published)
        position = {id(event): n for n, event in enumerate(written, start=1)}

        def position_of(event: Event[Any]) -> int:
            if id(event) not in position:
                written.append(event)
                position[id(event)] = len(written)
            return position[id(event)]

        appended = [
            (case, version, position_of(event)) for case in opened for version, event in enumerate(case.events, start=1)
        ]
        due_causes = [None if row.cause is None else position_of(row.cause) for row in due]
        kept = set(due_causes)  # parsed for the deadline's JSONB detail; case events keep the text
        claiming: dict[str, Any] = {}
        if claim is not None:
            concern_of = causes or {}
            claiming = {
                **claim.parameters(),
                "causes": [concern_of[event.event_id] for event in written],
                "case_concerns": [concern_of[case.events[0].event_id] for case in opened],
            }
        outbox = outbox_parameters(written)
        try:
            queued = await session.execute(
                OPEN_ALL if claim is None else OPEN_ALL_CLAIMING,
                claiming
                | {
                    "event_ids": outbox["event_ids"],
                    "event_schools": outbox["schools"],
                    "types": outbox["types"],
                    "bodies": outbox["bodies"],
                    "traceparents": outbox["traceparents"],
                    "published": [n <= len(published) for n in range(1, len(written) + 1)],
                    "kept": [n in kept for n in range(1, len(written) + 1)],
                    "event_cases": [case.case_id for case, _, _ in appended],
                    "versions": [version for _, version, _ in appended],
                    "positions": [n for _, _, n in appended],
                    "case_ids": [case.case_id for case in opened],
                    "schools": [case.school_id for case in opened],
                    "references": [case.reference for case in opened],
                    "case_versions": [len(case.events) for case in opened],
                    "policy_versions": [case.policy_version for case in opened],
                    "opened_at": [case.opened_at for case in opened],
                    "due_ids": [row.deadline_id for row in due],
                    "due_schools": [row.school_id for row in due],
                    "due_cases": [row.case_id for row in due],
                    "due_kinds": [row.kind for row in due],
                    "due_at": [row.due_at for row in due],
                    "due_details": [json.dumps(row.detail) for row in due],
                    "due_causes": due_causes,
                },
            )
        except IntegrityError as clash:
            raise ConcurrencyConflict(f"one of {len(opened)} new cases has events already") from clash
        if work is not None and published:
            work.enqueued(written_rows(queued, outbox))


@dataclass(frozen=True)
class DueDeadline:
    deadline_id: str
    school_id: str
    case_id: str
    kind: str
    due_at: datetime
    detail: dict[str, Any]
    cause: Event[Any] | None = None  # to write as detail["cause"] (with the event's own text when it is written)

    def written_detail(self) -> dict[str, Any]:
        """The detail as it is kept: with the cause in it, as JSON."""
        return self.detail if self.cause is None else {**self.detail, "cause": self.cause.model_dump(mode="json")}


class Deadlines(Protocol):
    """What routing asks of its due-table (`SqlDeadlines`; a fake in tests/support/fakes.py)."""

    async def set(
        self,
        session: AsyncSession,
        *,
        deadline_id: str,
        school_id: str,
        case_id: str,
        kind: str,
        due_at: datetime,
        detail: dict[str, Any],
    ) -> None: ...

    async def set_all(self, session: AsyncSession, rows: Sequence[DueDeadline]) -> None: ...

    async def claim_due(self, session: AsyncSession, *, now: datetime, limit: int = 50) -> list[DueDeadline]: ...

    async def close(self, session: AsyncSession, *, deadline_id: str, status: str, at: datetime) -> None: ...

    async def pending(self, session: AsyncSession, *, case_ids: Sequence[str], kind: str) -> dict[str, DueDeadline]: ...

    async def bring_forward(self, session: AsyncSession, *, deadline_ids: Sequence[str], to: datetime) -> None: ...

    async def cancel_for_case(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        kinds: Sequence[str],
        at: datetime,
        matching: Mapping[str, str] | None = None,
    ) -> int: ...


class SqlDeadlines:
    """The durable due-table: a deadline fires once, in the same transaction as the events it causes."""

    async def set(
        self,
        session: AsyncSession,
        *,
        deadline_id: str,
        school_id: str,
        case_id: str,
        kind: str,
        due_at: datetime,
        detail: dict[str, Any],
    ) -> None:
        await session.execute(
            insert(deadlines)
            .values(
                deadline_id=deadline_id,
                school_id=school_id,
                case_id=case_id,
                kind=kind,
                due_at=due_at,
                status="pending",
                detail=detail,
            )
            .on_conflict_do_nothing()
        )

    async def set_all(self, session: AsyncSession, rows: Sequence[DueDeadline]) -> None:
        """Set these pending deadlines (one statement); a deadline id already set is left as it is."""
        if not rows:
            return
        await session.execute(
            SET_ALL,
            {
                "ids": [row.deadline_id for row in rows],
                "schools": [row.school_id for row in rows],
                "case_ids": [row.case_id for row in rows],
                "kinds": [row.kind for row in rows],
                "due": [row.due_at for row in rows],
                "details": [json.dumps(row.written_detail()) for row in rows],
            },
        )

    async def claim_due(self, session: AsyncSession, *, now: datetime, limit: int = 50) -> list[DueDeadline]:
        """Pending deadlines that are due, locked so no other instance fires them too."""
        rows = await session.execute(
            sa.select(deadlines)
            .where(deadlines.c.status == "pending", deadlines.c.due_at <= now)
            .order_by(deadlines.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [DueDeadline(r.deadline_id, r.school_id, r.case_id, r.kind, r.due_at, dict(r.detail)) for r in rows]

    async def close(self, session: AsyncSession, *, deadline_id: str, status: str, at: datetime) -> None:
        """Mark a deadline fired or cancelled; it never fires again."""
        await session.execute(
            sa.update(deadlines).where(deadlines.c.deadline_id == deadline_id).values(status=status, fired_at=at)
        )

    async def pending(self, session: AsyncSession, *, case_ids: Sequence[str], kind: str) -> dict[str, DueDeadline]:
        """Each case's soonest pending deadline of this kind, if it has one (locked: about to be moved or fired)."""
        if not case_ids:
            return {}
        rows = await session.execute(PENDING, {"case_ids": list(case_ids), "kind": kind})
        # Latest first, so the soonest of each case is the one left in the dictionary.
        return {
            r.case_id: DueDeadline(r.deadline_id, r.school_id, r.case_id, r.kind, r.due_at, dict(r.detail))
            for r in rows
        }

    async def bring_forward(self, session: AsyncSession, *, deadline_ids: Sequence[str], to: datetime) -> None:
        """Make pending deadlines due at `to` (those due later): the scheduler fires each, once, as usual."""
        if not deadline_ids:
            return
        await session.execute(BRING_FORWARD, {"ids": list(deadline_ids), "to": to})

    async def cancel_for_case(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        kinds: Sequence[str],
        at: datetime,
        matching: Mapping[str, str] | None = None,
    ) -> int:
        """Cancel the case's pending deadlines of these kinds (whose detail has `matching`); how many there were."""
        which = [deadlines.c.case_id == case_id, deadlines.c.kind.in_(kinds), deadlines.c.status == "pending"]
        if matching:
            which.append(deadlines.c.detail.contains(dict(matching)))
        cancelled = await session.execute(
            sa.update(deadlines)
            .where(*which)
            .values(status="cancelled", fired_at=at)
            .returning(deadlines.c.deadline_id)
        )
        return len(cancelled.all())


@dataclass(frozen=True)
class AdoptedPolicy:
    """One version of a school's policy as it was adopted."""

    school_id: str
    version: int
    digest: str
    document: dict[str, Any]


class PolicyVersions(Protocol):
    """Every policy version each school adopted (`SqlPolicyVersions`; a fake in tests/support/fakes.py)."""

    async def latest(self, session: AsyncSession, *, school_id: str) -> AdoptedPolicy | None: ...

    async def get(self, session: AsyncSession, *, school_id: str, version: int) -> AdoptedPolicy | None: ...

    async def record(self, session: AsyncSession, policy: AdoptedPolicy, *, adopted_at: datetime) -> None: ...


class SqlPolicyVersions:
    """The `policies` table: one row per adopted version, with the whole document for replay."""

    async def latest(self, session: AsyncSession, *, school_id: str) -> AdoptedPolicy | None:
        """The school's highest adopted version, if it adopted one."""
        row = (
            await session.execute(
                sa.select(policies)
                .where(policies.c.school_id == school_id)
                .order_by(policies.c.version.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else AdoptedPolicy(row.school_id, row.version, row.digest, dict(row.document))

    async def get(self, session: AsyncSession, *, school_id: str, version: int) -> AdoptedPolicy | None:
        """One adopted version, if the school adopted it."""
        row = (
            await session.execute(
                sa.select(policies).where(policies.c.school_id == school_id, policies.c.version == version)
            )
        ).first()
        return None if row is None else AdoptedPolicy(row.school_id, row.version, row.digest, dict(row.document))

    async def record(self, session: AsyncSession, policy: AdoptedPolicy, *, adopted_at: datetime) -> None:
        """Add a newly adopted version (a version is adopted once)."""
        await session.execute(
            sa.insert(policies).values(
                school_id=policy.school_id,
                version=policy.version,
                digest=policy.digest,
                document=policy.document,
                adopted_at=adopted_at,
            )
        )


async def count_dead_letter(session: AsyncSession, *, school_id: str, consumer: str, window_start: datetime) -> int:
    """Count one more dead letter for the consumer in this window; returns the count so far."""
    statement = (
        insert(dead_letter_alerts)
        .values(school_id=school_id, consumer=consumer, window_start=window_start, parked=1)
        .on_conflict_do_update(
            index_elements=["school_id", "consumer", "window_start"], set_={"parked": dead_letter_alerts.c.parked + 1}
        )
        .returning(dead_letter_alerts.c.parked)
    )
    return int((await session.execute(statement)).scalar_one())


async def dead_letters_in(session: AsyncSession, *, school_id: str, consumer: str, window_start: datetime) -> int:
    """How many were counted for the consumer in the window starting at `window_start` (0 if none)."""
    statement = sa.select(dead_letter_alerts.c.parked).where(
        dead_letter_alerts.c.school_id == school_id,
        dead_letter_alerts.c.consumer == consumer,
        dead_letter_alerts.c.window_start == window_start,
    )
    return int((await session.execute(statement)).scalar_one_or_none() or 0)
