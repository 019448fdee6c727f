"""What every console page shares: templates, security headers, session cookies, CSRF and the signed-in person."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any, Literal

from fastapi import HTTPException, Request, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.console.access import Principal, schools_in_scope
from services.console.accounts import SIGNED_IN, Session, account_row, find_session
from services.console.passwords import same
from services.console.settings import ConsoleSettings
from shared.unit_of_work import UnitOfWork

TEMPLATES = Jinja2Templates(directory=str(files("services.console") / "templates"))


def plain(value: Any) -> str:
    """A recorded value in words for a page: lists one item after another, records as `name: value`, no None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "; ".join(shown for shown in map(plain, value) if shown)
    if isinstance(value, dict):
        parts = ((str(name).replace("_", " "), plain(item)) for name, item in value.items())
        return ", ".join(f"{name}: {shown}" for name, shown in parts if shown)
    return str(value)


TEMPLATES.env.filters["plain"] = plain

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers(*, secure: bool) -> dict[str, str]:
    """Headers on every answer: no inline script, no framing, no sniffing, no referrer, nothing cached."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


@dataclass(frozen=True)
class Cookies:
    """Cookie names and flags: `__Host-` names when Secure, so no other site or path can plant one."""

    secure: bool

    @property
    def session(self) -> str:
        return "__Host-sg_session" if self.secure else "sg_session"

    @property
    def sign_in(self) -> str:
        return "__Host-sg_sign_in" if self.secure else "sg_sign_in"

    @property
    def oidc(self) -> str:
        """Ties a sign-in sent to the identity provider to the browser that started it."""
        return "__Host-sg_oidc" if self.secure else "sg_oidc"

    def set(
        self, response: Response, name: str, value: str, *, max_age: int, same_site: Literal["strict", "lax"] = "strict"
    ) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite=same_site
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="strict")


@dataclass(frozen=True)
class Context:
    """What the routes need: database sessions, the unit of work, settings, the schools' trusts and the clock."""

    sessions: async_sessionmaker[AsyncSession]
    uow: UnitOfWork
    settings: ConsoleSettings
    cookies: Cookies
    trusts: Mapping[str, str | None]
    clock: Callable[[], datetime]
    sign_in_key: bytes
    # The trusts' identity providers offered on the sign-in page: (id, label).
    sign_in_options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Visit:
    """A signed-in request: who it is and the session's CSRF token."""

    principal: Principal
    csrf_token: str


async def current_session(context: Context, request: Request) -> tuple[str, Session] | None:
    cookie = request.cookies.get(context.cookies.session)
    if not cookie:
        return None
    async with context.sessions() as session, session.begin():
        found = await find_session(session, cookie, now=context.clock())
    return (cookie, found) if found else None


def wants_json(request: Request) -> bool:
    """A script asking (the device's queue sending what it kept offline), not a page being opened."""
    return "application/json" in request.headers.get("accept", "")


def _to_sign_in(request: Request) -> HTTPException:
    if wants_json(request):
        return HTTPException(status_code=401, detail="Sign in again.")
    return HTTPException(status_code=303, headers={"Location": "/sign-in"})


async def signed_in(context: Context, request: Request) -> Visit:
    """The signed-in person, or a redirect to sign-in (raised as an HTTP 303; 401 to a script)."""
    current = await current_session(context, request)
    if current is None or current[1].stage != SIGNED_IN:
        raise _to_sign_in(request)
    async with context.sessions() as session, session.begin():
        account = await account_row(session, current[1].account_id)
    if account is None or account.disabled_at is not None:
        raise _to_sign_in(request)
    principal = Principal(
        account_id=account.account_id,
        username=account.username,
        person_id=account.person_id,
        role=account.role,
        school_id=account.school_id,
        school_ids=schools_in_scope(account.school_id, account.role, trusts=context.trusts),
    )
    return Visit(principal, current[1].csrf_token)


CSRF_HEADER = "x-csrf-token"


async def form_with_csrf(request: Request, expected: str) -> dict[str, str]:
    """The posted form, once its CSRF token (the form's field, or the `X-CSRF-Token` header a queued send
    carries) matches the session's; 403 otherwise."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    if not same(form.get("csrf_token") or request.headers.get(CSRF_HEADER, ""), expected):
        raise HTTPException(status_code=403, detail="This form has expired. Go back, reload the page and try again.")
    return form


def page(request: Request, template: str, *, status_code: int = 200, **values: Any) -> Response:
    """A server-rendered page (Jinja2 autoescapes every value)."""
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)


Route = Callable[..., Awaitable[Response]]
