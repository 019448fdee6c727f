"""The OpenID Connect sign-in routes: send the browser to the trust's provider, and take it back.

`state` is kept (hashed) in `console.oidc_requests` with the nonce, the PKCE verifier and the hash of a cookie
of the browser that started, and is deleted when it comes back: a state is good once, for that browser, for 10
minutes. Every refusal shows the sign-in page with the reason and sets no session.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.console.access import AccountRefused, check_account
from services.console.accounts import PASSWORD_CHECKED, SIGNED_IN, issue_session, too_many_attempts
from services.console.admin_store import latest_policies
from services.console.oidc import OidcClient, OidcRefused, person_for, request_expiry
from services.console.passwords import new_token, signed, token_hash
from services.console.store import accounts, oidc_requests
from services.console.web import Context, page
from services.routing.policy.model import Policy

EXPIRED = "This sign-in has expired or was already used. Start again."


async def _take(session: AsyncSession, state: str, *, now: Any) -> Any | None:
    """The sign-in this state belongs to, removed so it cannot be used again (None if unknown or expired)."""
    taken = await session.execute(
        sa.delete(oidc_requests).where(oidc_requests.c.state_hash == token_hash(state)).returning(oidc_requests)
    )
    row = taken.one_or_none()
    return row if row is not None and row.expires_at > now else None


async def _account(session: AsyncSession, *, school_id: str, person_id: str) -> Any | None:
    """The person's oldest enabled console account at that school."""
    query = (
        sa.select(accounts)
        .where(accounts.c.school_id == school_id, accounts.c.person_id == person_id, accounts.c.disabled_at.is_(None))
        .order_by(accounts.c.created_at)
    )
    return (await session.execute(query)).first()


def oidc_router(context: Context, *, clients: Mapping[str, OidcClient], folder: Mapping[str, Policy]) -> APIRouter:
    router = APIRouter()
    cookies = context.cookies

    def refused(request: Request, reason: str, *, status_code: int = 401) -> Response:
        nonce = request.cookies.get(cookies.sign_in) or new_token()
        response = page(
            request,
            "sign_in.html",
            status_code=status_code,
            csrf_token=signed(nonce, key=context.sign_in_key),
            error=f"Sign-in through your school's account was refused: {reason}",
            providers=context.sign_in_options,
        )
        cookies.set(response, cookies.sign_in, nonce, max_age=3600)
        cookies.clear(response, cookies.oidc)
        return response

    @router.get("/sign-in/oidc/{provider_id}")
    async def start(request: Request, provider_id: str) -> Response:
        client = clients.get(provider_id)
        if client is None:
            raise HTTPException(status_code=404, detail="There is no such way to sign in.")
        browser, now = new_token(), context.clock()
        state, nonce, verifier = new_token(), new_token(), new_token() + new_token()
        try:
            started = await client.start(state=state, nonce=nonce, code_verifier=verifier)
        except Exception:  # the provider is down or misconfigured: say so, never a traceback
            return refused(request, f"{client.provider.label} did not answer; try again later", status_code=502)
        async with context.sessions() as session, session.begin():
            await session.execute(
                sa.insert(oidc_requests).values(
                    state_hash=token_hash(state),
                    provider=provider_id,
                    nonce=nonce,
                    code_verifier=verifier,
                    browser_hash=token_hash(browser),
                    expires_at=request_expiry(now),
                )
            )
        response = RedirectResponse(started.url, status_code=303)
        # SameSite=Lax: it must come back with the provider's redirect, a cross-site navigation.
        cookies.set(response, cookies.oidc, browser, max_age=600, same_site="lax")
        return response

    @router.get("/sign-in/oidc-callback")
    async def callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
        now = context.clock()
        async with context.sessions() as session, session.begin():
            per_minute = context.settings.attempts_per_minute
            client_host = request.client.host if request.client else "unknown"
            if await too_many_attempts(session, client=client_host, now=now, per_minute=per_minute):
                return refused(request, "too many attempts from here; wait a minute", status_code=429)
            pending = await _take(session, state, now=now) if state else None
        browser = request.cookies.get(cookies.oidc, "")
        if pending is None or not browser or token_hash(browser) != pending.browser_hash:
            return refused(request, EXPIRED)
        if error or not code:
            return refused(request, "the provider did not sign you in")
        client = clients[pending.provider]
        try:
            who = await client.finish(code=code, nonce=pending.nonce, code_verifier=pending.code_verifier, now=now)
            async with context.sessions() as session, session.begin():
                adopted = await latest_policies(session, folder=folder)
                schools = client.provider.schools(context.trusts)
                policies = {s: p for s, a in adopted.items() if s in schools and (p := a.policy()) is not None}
                school_id, person = person_for(who.email, provider=client.provider, policies=policies)
                account = await _account(session, school_id=school_id, person_id=person.id)
                if account is None:
                    raise OidcRefused("you have no console account; ask your school's DSL or trust administrator")
                check_account(policies[school_id], person_id=person.id, role=account.role)
                if account.locked_until is not None and account.locked_until > now:
                    raise OidcRefused("the account is locked for a while after failed sign-ins")
                stage = SIGNED_IN if client.provider.idp_enforces_mfa else PASSWORD_CHECKED
                minutes = (
                    context.settings.session_hours * 60
                    if stage == SIGNED_IN
                    else context.settings.second_factor_minutes
                )
                issued = await issue_session(
                    session, account_id=account.account_id, stage=stage, now=now, lasts=timedelta(minutes=minutes)
                )
        except (OidcRefused, AccountRefused) as why:
            return refused(request, str(why))
        # A page that moves on by itself, not a redirect: a redirect still counts as the provider's cross-site
        # navigation, and the browser would not send the SameSite=Strict session cookie with it.
        onward = "/" if stage == SIGNED_IN else "/sign-in/code"
        response = page(request, "oidc_continue.html", onward=onward)
        cookies.set(response, cookies.session, issued.cookie, max_age=int(minutes * 60))
        cookies.clear(response, cookies.oidc)
        return response

    return router
