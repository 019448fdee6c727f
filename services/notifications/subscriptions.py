"""Push subscriptions (RFC 8030): which browsers may be woken for which person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifications.store import push_subscriptions
from shared.coalesce import Coalesced
from shared.db import autocommit

_FOR_PEOPLE = sa.text(
    "select person_id, endpoint, p256dh, auth from notifications.push_subscriptions "
    "where person_id = any(cast(:people as text[])) order by created_at"
)


@dataclass(frozen=True)
class PushSubscription:
    """What the browser's PushManager.subscribe() gave: where to post, and the keys to encrypt for."""

    endpoint: str
    p256dh: str
    auth: str

    def as_subscription_info(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


async def save_subscription(
    session: AsyncSession, subscription: PushSubscription, *, person_id: str, at: datetime
) -> None:
    """In the caller's transaction: keep it for the person (an endpoint subscribing again moves to them)."""
    values = {"p256dh": subscription.p256dh, "auth": subscription.auth, "person_id": person_id}
    await session.execute(
        insert(push_subscriptions)
        .values(endpoint=subscription.endpoint, created_at=at, **values)
        .on_conflict_do_update(index_elements=[push_subscriptions.c.endpoint], set_=values)
    )


async def remove_subscription(session: AsyncSession, endpoint: str, *, person_id: str | None = None) -> bool:
    """In the caller's transaction: forget it (the named person's only, when one is named); True when removed."""
    condition = push_subscriptions.c.endpoint == endpoint
    if person_id is not None:
        condition = condition & (push_subscriptions.c.person_id == person_id)
    result = await session.execute(
        sa.delete(push_subscriptions).where(condition).returning(push_subscriptions.c.endpoint)
    )
    return result.first() is not None


class SqlPushSubscriptions:
    """Subscriptions in the notifications schema; each call is its own short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        reads = autocommit(sessions)
        self._reads = {"bind": reads} if reads is not None else {}
        self._lookups: Coalesced[str, list[PushSubscription]] = Coalesced(self._for_people)

    async def save(self, subscription: PushSubscription, *, person_id: str, at: datetime) -> None:
        """Keep a subscription for a person; the same endpoint subscribing again moves to this person."""
        async with self._sessions.begin() as session:
            await save_subscription(session, subscription, person_id=person_id, at=at)

    async def remove(self, endpoint: str, *, person_id: str | None = None) -> bool:
        """Forget a subscription (for this person only, when one is named); True when one was removed."""
        async with self._sessions.begin() as session:
            return await remove_subscription(session, endpoint, person_id=person_id)

    async def for_person(self, person_id: str) -> list[PushSubscription]:
        """The person's browsers, oldest subscription first. Asked on every push: the sends in flight together
        share one statement (one round trip, no transaction block)."""
        return await self._lookups.submit(person_id)

    async def _for_people(self, people: Sequence[str]) -> list[list[PushSubscription]]:
        found: dict[str, list[PushSubscription]] = {person_id: [] for person_id in people}
        async with self._sessions(**self._reads) as session:
            for r in await session.execute(_FOR_PEOPLE, {"people": list(found)}):
                found[r.person_id].append(PushSubscription(endpoint=r.endpoint, p256dh=r.p256dh, auth=r.auth))
        return [list(found[person_id]) for person_id in people]
