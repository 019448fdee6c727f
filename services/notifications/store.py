"""Notifications' schema: one delivery row per notification id, from requested to sent, delivered or failed.

A row is recorded by the consumer's statement either `requested` (the dispatcher claims it later) or already
claimed for the dispatcher; either way it is committed `sending`, its attempt counted, before the channel is
called; a channel with a point of no return (SMTP's end of data) has it recorded `committing` just before; the
outcome is `sent`, `sent_unconfirmed` (cut off after that point), `failed`, or `requested` again for a retry. A
channel's receipt then makes it `delivered` (or `failed`). `ready_at` is when the row is next due: the retry time
while requested, the reconcile time while in flight.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.attempts import Attempt, Finished, Recorded
from shared.contracts.envelope import parse_event
from shared.contracts.events import NotificationRequested
from shared.inbox_outbox import InboxOutbox, outbox_parameters, written_rows
from shared.unit_of_work import Work

SCHEMA = "notifications"
metadata = sa.MetaData(schema=SCHEMA)
OUTBOX = InboxOutbox(SCHEMA)
SENDING = ("sending", "committing")  # an attempt under way: before, or past, its point of no return
IN_FLIGHT = ("requested", *SENDING)  # due again at ready_at (a retry, or a cut-off attempt)
SENT = ("sent", "sent_unconfirmed")


def sql_list(values: tuple[str, ...]) -> str:
    """A fixed tuple of status words as an SQL list literal, for statements written as text."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


IN_FLIGHT_SQL = sql_list(IN_FLIGHT)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("school_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("recipient_person_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("requested_event_id", sa.Uuid, nullable=False),
    sa.Column("correlation_id", sa.Uuid, nullable=False),
    sa.Column("traceparent", sa.Text),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("request", sa.Text),  # the request event's JSON text, as published (migration 0006; was JSONB)
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempted_at", sa.DateTime(timezone=True)),
    sa.Column("ready_at", sa.DateTime(timezone=True)),
    # migration 0004: the provider's id for the message, and the channel's receipt (delivered or not)
    sa.Column("provider_message_id", sa.Text),
    sa.Column("receipt", sa.Text),
    sa.Column("receipt_at", sa.DateTime(timezone=True)),
    sa.Index("deliveries_ready", "ready_at", postgresql_where=sa.text(f"status IN {IN_FLIGHT_SQL}")),
)


# The browsers each person has allowed to receive push messages (migration 0002).
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("person_id", sa.Text, nullable=False),
    sa.Column("p256dh", sa.Text, nullable=False),
    sa.Column("auth", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_push_subscriptions_person_id", "person_id"),
)


# New requests, due now; a notification id recorded before is left as it is. The first `:claiming` of them are
# recorded already claimed, exactly as `_CLAIM` would leave them (`sending`, attempt 1 counted, due again after the
# sending timeout), for the dispatcher to begin once the statement has committed; the rest are `requested`. One
# fixed statement over arrays (prepared once whatever the batch's size), each request written as its JSON text.
# The deliveries are the request consumer's inbox: a redelivered request finds its notification id recorded and changes
# nothing (nor is it claimed for sending again), so the consumer's claim writes no inbox row. A redelivery in a batch
# may use up one of the `:claiming` places: the row it would have had stays `requested` for the dispatcher's claim.
_RECORD = sa.text(
    f"insert into {SCHEMA}.deliveries (notification_id, school_id, case_id, recipient_person_id, channel, status, "
    "requested_event_id, correlation_id, traceparent, request, attempts, attempted_at, ready_at) "
    "select v.notification_id, v.school_id, v.case_id, v.recipient_person_id, v.channel, "
    "case when v.claimed then 'sending' else 'requested' end, "
    "v.requested_event_id, v.correlation_id, v.traceparent, v.request, "
    "case when v.claimed then 1 else 0 end, "
    "case when v.claimed then cast(:at as timestamptz) end, "
    "case when v.claimed then cast(:sending_until as timestamptz) else cast(:at as timestamptz) end "
    "from (select u.*, row_number() over (order by u.position) <= cast(:claiming as integer) as claimed "
    "from unnest(cast(:ids as text[]), cast(:schools as text[]), cast(:cases as text[]), cast(:people as text[]), "
    "cast(:channels as text[]), cast(:event_ids as uuid[]), cast(:correlations as uuid[]), "
    "cast(:traceparents as text[]), cast(:requests as text[])) with ordinality "
    "as u(notification_id, school_id, case_id, recipient_person_id, channel, requested_event_id, correlation_id, "
    "traceparent, request, position)) v "
    "on conflict do nothing returning notification_id, requested_event_id, status"
)


# Only the attempt that is still current is recorded (a row reclaimed after a cut-off send has a higher count),
# and only a recorded outcome's announcement goes into the outbox, in the same statement. The statement returns the
# recorded ids, and the outbox rows' positions for the relay (`written_rows`).
_FINISH_ALL = sa.text(
    "with v as (select * from unnest(cast(:ids as text[]), cast(:attempts as integer[]), "
    "cast(:statuses as text[]), cast(:details as text[]), cast(:retry_ats as timestamptz[]), "
    "cast(:event_ids as uuid[]), cast(:schools as text[]), cast(:types as text[]), cast(:bodies as text[]), "
    "cast(:traceparents as text[])) "
    "as v(notification_id, attempt, status, detail, retry_at, event_id, school_id, event_type, body, traceparent)), "
    f"finished as (update {SCHEMA}.deliveries d set status = v.status, detail = v.detail, ready_at = v.retry_at, "
    f"delivered_at = case when v.status in {sql_list(SENT)} then cast(:at as timestamptz) "
    "else d.delivered_at end, "
    "provider_message_id = case when v.status = 'sent' then v.detail else d.provider_message_id end "
    f"from v where d.notification_id = v.notification_id and d.status in {sql_list(SENDING)} "
    "and d.attempts = v.attempt "
    "returning d.notification_id, d.attempts), "
    "announced as (select v.event_id, v.school_id, v.event_type, v.body, v.traceparent from v "
    "join finished f on f.notification_id = v.notification_id and f.attempts = v.attempt "
    "where v.event_id is not null), "
    f"published as ({OUTBOX.enqueue_from_sql('announced')}) "
    "select notification_id, cast(null as bigint) as position, cast(null as uuid) as event_id from finished "
    "union all select null, position, event_id from published"
)


# Claim: choose the due rows (skipping any another dispatcher holds), then count the attempt and mark them
# sending, in one statement. `due` keeps each row's status from before the update: whether an earlier attempt
# was cut off, and where. The request comes back as the JSON text it was recorded as, for the event registry.
_CLAIM = sa.text(
    f"with due as (select notification_id, status, ready_at from {SCHEMA}.deliveries "
    f"where status in {IN_FLIGHT_SQL} and ready_at <= cast(:now as timestamptz) "
    "and notification_id <> all(cast(:busy as text[])) "
    "order by ready_at limit cast(:limit as integer) for update skip locked) "
    f"update {SCHEMA}.deliveries d set status = 'sending', attempts = d.attempts + 1, "
    "attempted_at = cast(:now as timestamptz), ready_at = cast(:ready_at as timestamptz) "
    "from due where d.notification_id = due.notification_id "
    "returning d.notification_id, due.status, due.ready_at as due_at, d.attempts, d.request"
)


class SqlDeliveries:
    """Delivery rows: one per notification id, so a second request for the same notification sends nothing."""

    async def record_requested(self, session: AsyncSession, request: NotificationRequested, *, at: datetime) -> bool:
        """Record the request (due now); False when this notification was already recorded."""
        recorded = await self.record_all_requested(session, [request], at=at)
        return request.payload.notification_id in recorded.fresh

    async def record_all_requested(
        self,
        session: AsyncSession,
        requests: Sequence[NotificationRequested],
        *,
        at: datetime,
        claiming: int = 0,
        sending_timeout: timedelta = timedelta(0),
    ) -> Recorded:
        """Record many requests in one statement: which were not recorded before, and which of those the statement
        claimed for sending (at most `claiming`, first come first).

        A request whose notification was recorded before (a redelivery) changes nothing: the consumer's claim of the
        requests' events needs no inbox row. A claimed row is committed `sending` when a statement run without a
        transaction block returns: its attempt may begin at once, with no `claim_ready`."""
        if not requests:
            return Recorded(set(), [])
        result = await session.execute(
            _RECORD,
            {
                "ids": [request.payload.notification_id for request in requests],
                "schools": [request.school_id for request in requests],
                "cases": [request.payload.case_id for request in requests],
                "people": [request.payload.recipient.person_id for request in requests],
                "channels": [request.payload.channel for request in requests],
                "event_ids": [request.event_id for request in requests],
                "correlations": [request.correlation_id for request in requests],
                "traceparents": [request.traceparent for request in requests],
                "requests": [request.model_dump_json() for request in requests],
                "at": at,
                "claiming": claiming,
                "sending_until": at + sending_timeout,
            },
        )
        rows = result.all()
        sending = {(row.notification_id, row.requested_event_id) for row in rows if row.status == "sending"}
        claimed = []
        for request in requests:  # each claimed row once, with the request that recorded it
            if (key := (request.payload.notification_id, request.event_id)) in sending:
                sending.discard(key)
                claimed.append(Attempt(key[0], 1, request, interrupted=False))
        return Recorded({row.notification_id for row in rows}, claimed)

    async def claim_ready(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        limit: int,
        sending_timeout: timedelta,
        busy: Collection[str] = (),
    ) -> list[Attempt]:
        """Due rows (new, retrying, or cut off mid-send), locked and marked sending with their attempt counted;
        never those in `busy` (this process's attempts still under way, however long they have taken).

        One statement, atomic on its own (the dispatcher runs it without a transaction block): the rows it
        returns are committed `sending` before any channel is called.
        """
        parameters = {"now": now, "limit": limit, "ready_at": now + sending_timeout, "busy": list(busy)}
        rows = (await session.execute(_CLAIM, parameters)).all()
        return [
            Attempt(
                r.notification_id,
                r.attempts,
                _request(r.request),
                interrupted=r.status != "requested",
                past_commit_point=r.status == "committing",
            )
            for r in sorted(rows, key=lambda r: r.due_at)  # earliest due first, as they were chosen
        ]

    async def mark_committing(self, session: AsyncSession, *, notification_id: str, attempt: int) -> bool:
        """Record that this attempt is about to pass its point of no return; False when it is no longer current."""
        result = await session.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.notification_id == notification_id,
                deliveries.c.status == "sending",
                deliveries.c.attempts == attempt,
            )
            .values(status="committing")
            .returning(deliveries.c.notification_id)
        )
        return result.first() is not None

    async def finish_all(
        self, session: AsyncSession, finished: Sequence[Finished], *, at: datetime, work: Work | None = None
    ) -> set[str]:
        """Record many attempts' outcomes, and put the announcements of those recorded in the outbox, in one
        statement; returns the ids whose attempt was still the current one. With `work` (whose session this is),
        the outbox rows written are handed to its relay once it commits."""
        if not finished:
            return set()
        parameters = {
            "ids": [f.notification_id for f in finished],
            "attempts": [f.attempt for f in finished],
            "statuses": [f.status for f in finished],
            "details": [f.detail for f in finished],
            "retry_ats": [f.retry_at for f in finished],
            **outbox_parameters([f.announce for f in finished]),
            "at": at,
        }
        rows = (await session.execute(_FINISH_ALL, parameters)).all()
        written = [(row.position, row.event_id) for row in rows if row.position is not None]
        if work is not None and written:
            work.enqueued(written_rows(written, parameters))
        return {row.notification_id for row in rows if row.notification_id is not None}

    async def record_receipt(
        self, session: AsyncSession, *, notification_id: str, receipt: str, delivered: bool, detail: str, at: datetime
    ) -> sa.Row | None:
        """The channel's receipt, once, for a sent delivery: `delivered`, or `failed`; the row when this recorded it."""
        values: dict[str, Any] = {
            "receipt": receipt,
            "receipt_at": at,
            "status": "delivered" if delivered else "failed",
        }
        if not delivered:
            values["detail"] = detail
        return (
            await session.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.status.in_(SENT),
                    deliveries.c.receipt.is_(None),
                )
                .values(**values)
                .returning(deliveries)
            )
        ).first()

    async def acknowledge(self, session: AsyncSession, *, notification_id: str, by: str, at: datetime) -> sa.Row | None:
        """Mark acknowledged once; returns the row when this call acknowledged it, None otherwise."""
        return (
            await session.execute(
                sa.update(deliveries)
                .where(deliveries.c.notification_id == notification_id, deliveries.c.acknowledged_at.is_(None))
                .values(acknowledged_at=at, acknowledged_by=by)
                .returning(deliveries)
            )
        ).first()

    async def get(self, session: AsyncSession, notification_id: str) -> sa.Row | None:
        return (
            await session.execute(sa.select(deliveries).where(deliveries.c.notification_id == notification_id))
        ).first()


def _request(document: str) -> NotificationRequested:
    event = parse_event(document)
    assert isinstance(event, NotificationRequested)
    return event
