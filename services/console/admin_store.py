"""What the admin pages read and change: schools' adopted policies and console accounts, under row-level security.

Every change runs in one transaction that first becomes the request role for the administrator's schools (so
PostgreSQL refuses another school's account even if Python forgot), then, back as the service's own role, puts
the `account.changed` event naming the administrator in the outbox: a change is never left unrecorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.access import Principal
from services.console.store import REQUEST_ROLE, accounts, policies, school_list
from services.routing.policy.load import PolicyError, policy_from_data
from services.routing.policy.model import Policy
from shared.contracts.account_events import AccountChange, AccountChanged, AccountChangedPayload
from shared.contracts.envelope import Actor, Event
from shared.unit_of_work import UnitOfWork, Work

VIA = "console"


@dataclass(frozen=True)
class Adopted:
    """A school's latest adopted policy as the console knows it (from `policy.adopted`, or the policy folder)."""

    school_id: str
    version: int
    digest: str
    document: dict[str, Any]
    adopted_at: datetime | None
    adopted_by: str

    def policy(self) -> Policy | None:
        try:
            return policy_from_data(self.document, source=f"{self.school_id} v{self.version}")
        except PolicyError:
            return None


@asynccontextmanager
async def as_request(session: AsyncSession, *, school_ids: Iterable[str]) -> AsyncIterator[AsyncSession]:
    """Within the caller's transaction: the request role for these schools, then the service's own role again."""
    await session.execute(sa.text(f"set local role {REQUEST_ROLE}"))
    await session.execute(sa.text("select set_config('app.school_ids', :ids, true)"), {"ids": school_list(school_ids)})
    yield session
    # Not reached after an error: the transaction rolls back, whatever role it was in.
    await session.execute(sa.text("reset role"))


async def latest_policies(session: AsyncSession, *, folder: Mapping[str, Policy]) -> dict[str, Adopted]:
    """Each school's latest adopted version the transaction may see; the folder's file until one is projected."""
    ranked = sa.select(
        policies,
        sa.func.row_number()
        .over(partition_by=policies.c.school_id, order_by=policies.c.version.desc())
        .label("newest_first"),
    ).subquery()
    rows = await session.execute(sa.select(ranked).where(ranked.c.newest_first == 1))
    found = {
        row.school_id: Adopted(row.school_id, row.version, row.digest, row.document, row.adopted_at, row.adopted_by)
        for row in rows
    }
    for school_id, policy in folder.items():
        if school_id not in found:
            document = policy.model_dump(mode="json")
            found[school_id] = Adopted(school_id, policy.version, policy.digest, document, None, "policy folder")
    return found


async def school_accounts(session: AsyncSession, *, school_id: str) -> list[Any]:
    """The school's console accounts (never a hash or a secret)."""
    columns = (
        accounts.c.account_id,
        accounts.c.username,
        accounts.c.school_id,
        accounts.c.person_id,
        accounts.c.role,
        accounts.c.locked_until,
        accounts.c.disabled_at,
        accounts.c.created_at,
    )
    query = sa.select(*columns).where(accounts.c.school_id == school_id).order_by(accounts.c.username)
    return list((await session.execute(query)).all())


async def account_of(session: AsyncSession, account_id: str) -> Any | None:
    return (await session.execute(sa.select(accounts).where(accounts.c.account_id == account_id))).one_or_none()


def account_changed(
    account: Any, *, change: AccountChange, by: Principal, now: datetime, account_id: str | None = None
) -> Event[Any]:
    """The event recording `change` to `account`, with the administrator who made it as the actor."""
    payload = AccountChangedPayload(
        account_id=account_id or account.account_id,
        change=change,
        username=account.username,
        person_id=account.person_id,
        role=account.role,
        via=VIA,
    )
    event: Event[Any] = AccountChanged.new(
        payload,
        school_id=account.school_id,
        aggregate_id=payload.account_id,
        actor=Actor(id=by.person_id, role=by.role),
        occurred_at=now,
    )
    return event


@asynccontextmanager
async def account_change(uow: UnitOfWork, principal: Principal) -> AsyncIterator[tuple[Work, AsyncSession]]:
    """A unit of work whose database changes run under row-level security for the administrator's schools."""
    async with uow.begin() as work, as_request(work.session, school_ids=principal.school_ids) as scoped_session:
        yield work, scoped_session
