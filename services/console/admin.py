"""Admin pages: the trust's schools, each school's people and roles (from its policy) and console accounts.

For the trust administrator (every school of the trust) and a school's DSL or headteacher (their own school):
people and policies, never case content. Account changes are recorded as `account.changed` with the
administrator as the actor. Policy versions and notification settings: services/console/admin_policy.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError

from services.console.access import CONSOLE_ROLES, AccountRefused, Page, check_account, may_manage, may_open
from services.console.accounts import add_account, reset_second_factor, set_disabled
from services.console.admin_store import (
    Adopted,
    account_change,
    account_changed,
    account_of,
    latest_policies,
    school_accounts,
)
from services.console.passwords import provisioning_uri
from services.console.store import scoped
from services.console.web import Context, Visit, form_with_csrf, page, signed_in
from services.routing.policy.model import Policy
from shared.contracts.account_events import AccountChange

NOT_YOURS = "There is no such school, or it is not yours to look after."
SHORTEST_PASSWORD = 12


@dataclass(frozen=True)
class Admin:
    """What the admin pages share: the console's context and the policy folder's files (until one is adopted)."""

    context: Context
    folder: Mapping[str, Policy]

    async def visit(self, request: Request) -> Visit:
        """The signed-in administrator; 403 for anyone else."""
        visit = await signed_in(self.context, request)
        if not may_open(visit.principal, Page.admin):
            raise HTTPException(status_code=403, detail="Your role does not let you open this.")
        return visit

    async def policies(self, visit: Visit) -> dict[str, Adopted]:
        """The latest adopted policy of each school this administrator looks after."""
        schools = visit.principal.school_ids
        folder = {school: policy for school, policy in self.folder.items() if school in schools}
        async with scoped(self.context.sessions, school_ids=schools) as session:
            return await latest_policies(session, folder=folder)

    async def school(self, visit: Visit, school_id: str) -> Adopted:
        """One school's adopted policy; 404 for a school outside the administrator's."""
        found = (await self.policies(visit)).get(school_id)
        if found is None:
            raise HTTPException(status_code=404, detail=NOT_YOURS)
        return found


def _school_page(
    request: Request, admin: Admin, visit: Visit, adopted: Adopted, rows: list[Any], **extra: Any
) -> Response:
    policy = adopted.policy()
    managed = {row.account_id: may_manage(visit.principal, school_id=row.school_id, role=row.role) for row in rows}
    return page(
        request,
        "admin_school.html",
        status_code=extra.pop("status_code", 200),
        visit=visit,
        adopted=adopted,
        policy=policy,
        accounts=rows,
        managed=managed,
        roles=[r for r in CONSOLE_ROLES if may_manage(visit.principal, school_id=adopted.school_id, role=r)],
        now=admin.context.clock(),
        **{"error": "", "said": "", **extra},
    )


def admin_router(admin: Admin) -> APIRouter:
    router = APIRouter()
    context = admin.context

    @router.get("/admin")
    async def schools(request: Request) -> Response:
        visit = await admin.visit(request)
        adopted = await admin.policies(visit)
        listed = [(adopted[s], adopted[s].policy()) for s in sorted(adopted)]
        return page(request, "admin_schools.html", visit=visit, schools=listed, trusts=context.trusts)

    async def show_school(request: Request, visit: Visit, school_id: str, **extra: Any) -> Response:
        adopted = await admin.school(visit, school_id)
        async with scoped(context.sessions, school_ids=visit.principal.school_ids) as session:
            rows = await school_accounts(session, school_id=school_id)
        return _school_page(request, admin, visit, adopted, rows, **extra)

    @router.get("/admin/schools/{school_id}")
    async def school(request: Request, school_id: str, adopted: int | None = None) -> Response:
        visit = await admin.visit(request)
        said = f"Routing adopted version {adopted}; it is listed here once recorded." if adopted else ""
        return await show_school(request, visit, school_id, said=said)

    @router.post("/admin/schools/{school_id}/accounts")
    async def create_account(request: Request, school_id: str) -> Response:
        visit = await admin.visit(request)
        form = await form_with_csrf(request, visit.csrf_token)
        adopted = await admin.school(visit, school_id)
        username, person_id = form.get("username", "").strip(), form.get("person_id", "").strip()
        role, password = form.get("role", ""), form.get("password", "")
        if not may_manage(visit.principal, school_id=school_id, role=role):
            raise HTTPException(status_code=403, detail="You may not give an account with that role.")
        policy = adopted.policy()
        try:
            if policy is None:
                raise AccountRefused(f"{school_id}'s adopted policy cannot be read")
            check_account(policy, person_id=person_id, role=role)
            if not 1 <= len(username) <= 320:
                raise AccountRefused("give a username (usually the person's work email)")
            if password and len(password) < SHORTEST_PASSWORD:
                raise AccountRefused(f"a password must be at least {SHORTEST_PASSWORD} characters")
        except AccountRefused as refused:
            return await show_school(request, visit, school_id, error=str(refused), status_code=400)
        try:
            async with account_change(context.uow, visit.principal) as (work, session):
                made = await add_account(
                    session,
                    username=username,
                    password=password or None,
                    school_id=school_id,
                    person_id=person_id,
                    role=role,
                )
                account = await account_of(session, made.account_id)
                work.emit([account_changed(account, change="created", by=visit.principal, now=context.clock())])
        except IntegrityError:
            return await show_school(request, visit, school_id, error="That username is taken.", status_code=409)
        uri = provisioning_uri(made.totp_secret, username=username, issuer=context.settings.totp_issuer)
        return page(request, "admin_secret.html", visit=visit, account=account, secret=made.totp_secret, uri=uri)

    @router.post("/admin/accounts/{account_id}/{action}")
    async def change_account(request: Request, account_id: str, action: str) -> Response:
        visit = await admin.visit(request)
        await form_with_csrf(request, visit.csrf_token)
        if action not in ("disable", "enable", "reset-second-factor"):
            raise HTTPException(status_code=404, detail="There is no such change.")
        now = context.clock()
        async with account_change(context.uow, visit.principal) as (work, session):
            account = await account_of(session, account_id)
            if account is None:
                raise HTTPException(status_code=404, detail="There is no such account, or it is not yours to manage.")
            if not may_manage(visit.principal, school_id=account.school_id, role=account.role):
                raise HTTPException(status_code=403, detail="You may not change an account with that role.")
            if account.account_id == visit.principal.account_id and action == "disable":
                raise HTTPException(status_code=400, detail="You cannot disable your own account.")
            if action == "reset-second-factor":
                secret = await reset_second_factor(session, account_id=account_id)
                work.emit([account_changed(account, change="second_factor_reset", by=visit.principal, now=now)])
            else:
                secret = ""
                disabled = action == "disable"
                if await set_disabled(session, account_id=account_id, disabled=disabled, now=now):
                    change: AccountChange = "disabled" if disabled else "enabled"
                    work.emit([account_changed(account, change=change, by=visit.principal, now=now)])
        if secret:
            uri = provisioning_uri(secret, username=account.username, issuer=context.settings.totp_issuer)
            return page(request, "admin_secret.html", visit=visit, account=account, secret=secret, uri=uri)
        return RedirectResponse(f"/admin/schools/{account.school_id}", status_code=303)

    return router
