"""Sign-in (password, then a TOTP code), sign-out and sign-out everywhere."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from services.console.accounts import (
    PASSWORD_CHECKED,
    SIGNED_IN,
    check_code,
    check_password,
    end_every_session,
    end_session,
    issue_session,
    too_many_attempts,
)
from services.console.passwords import LockOut, new_token, signed
from services.console.web import Context, current_session, form_with_csrf, page, signed_in

REFUSED = "That did not work. Check what you typed; after several tries the account is locked for a while."
SLOW_DOWN = "Too many sign-in attempts from here. Wait a minute and try again."


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sign_in_router(context: Context) -> APIRouter:
    router = APIRouter()
    lock_out = LockOut(after=context.settings.lock_after_failures, minutes=context.settings.lock_minutes)
    cookies = context.cookies

    def sign_in_form(request: Request, *, error: str = "", status_code: int = 200) -> Response:
        nonce = request.cookies.get(cookies.sign_in) or new_token()
        response = page(
            request,
            "sign_in.html",
            status_code=status_code,
            csrf_token=signed(nonce, key=context.sign_in_key),
            error=error,
            providers=context.sign_in_options,
        )
        cookies.set(response, cookies.sign_in, nonce, max_age=3600)
        return response

    async def limited(request: Request) -> bool:
        async with context.sessions() as session, session.begin():
            return await too_many_attempts(
                session, client=_client(request), now=context.clock(), per_minute=context.settings.attempts_per_minute
            )

    @router.get("/sign-in")
    async def show_sign_in(request: Request) -> Response:
        return sign_in_form(request)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        nonce = request.cookies.get(cookies.sign_in, "")
        await form_with_csrf(request, signed(nonce, key=context.sign_in_key) if nonce else new_token())
        form = await request.form()
        if await limited(request):
            return sign_in_form(request, error=SLOW_DOWN, status_code=429)
        now = context.clock()
        async with context.sessions() as session, session.begin():
            account_id = await check_password(
                session,
                username=str(form.get("username", "")),
                password=str(form.get("password", "")),
                now=now,
                lock_out=lock_out,
            )
            if account_id is None:
                issued = None
            else:
                lasts = timedelta(minutes=context.settings.second_factor_minutes)
                issued = await issue_session(
                    session, account_id=account_id, stage=PASSWORD_CHECKED, now=now, lasts=lasts
                )
        if issued is None:
            return sign_in_form(request, error=REFUSED, status_code=401)
        response = RedirectResponse("/sign-in/code", status_code=303)
        cookies.set(response, cookies.session, issued.cookie, max_age=int(context.settings.second_factor_minutes * 60))
        return response

    @router.get("/sign-in/code")
    async def show_code(request: Request) -> Response:
        current = await current_session(context, request)
        if current is None or current[1].stage != PASSWORD_CHECKED:
            return RedirectResponse("/sign-in", status_code=303)
        return page(request, "code.html", csrf_token=current[1].csrf_token, error="")

    @router.post("/sign-in/code")
    async def enter_code(request: Request) -> Response:
        current = await current_session(context, request)
        if current is None or current[1].stage != PASSWORD_CHECKED:
            return RedirectResponse("/sign-in", status_code=303)
        cookie, pending = current
        form = await form_with_csrf(request, pending.csrf_token)
        if await limited(request):
            return page(request, "code.html", status_code=429, csrf_token=pending.csrf_token, error=SLOW_DOWN)
        now = context.clock()
        async with context.sessions() as session, session.begin():
            right = await check_code(
                session, account_id=pending.account_id, code=form.get("code", ""), now=now, lock_out=lock_out
            )
            if right:
                # The half-signed-in session ends and a new id is issued: nobody can plant a session id.
                await end_session(session, cookie)
                lasts = timedelta(hours=context.settings.session_hours)
                issued = await issue_session(
                    session, account_id=pending.account_id, stage=SIGNED_IN, now=now, lasts=lasts
                )
        if not right:
            return page(request, "code.html", status_code=401, csrf_token=pending.csrf_token, error=REFUSED)
        response = RedirectResponse("/", status_code=303)
        cookies.set(response, cookies.session, issued.cookie, max_age=int(context.settings.session_hours * 3600))
        cookies.clear(response, cookies.sign_in)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        visit = await signed_in(context, request)
        await form_with_csrf(request, visit.csrf_token)
        async with context.sessions() as session, session.begin():
            await end_session(session, request.cookies.get(cookies.session, ""))
        response = RedirectResponse("/sign-in", status_code=303)
        cookies.clear(response, cookies.session)
        return response

    @router.post("/sign-out-everywhere")
    async def sign_out_everywhere(request: Request) -> Response:
        visit = await signed_in(context, request)
        await form_with_csrf(request, visit.csrf_token)
        async with context.sessions() as session, session.begin():
            await end_every_session(session, account_id=visit.principal.account_id)
        response = RedirectResponse("/sign-in", status_code=303)
        cookies.clear(response, cookies.session)
        return response

    return router
