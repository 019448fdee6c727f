"""Console service wiring: the read-model consumer, the routers, security headers and error pages."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from services.console.admin import Admin, admin_router
from services.console.admin_policy import admin_policy_router
from services.console.audit_client import AuditClient
from services.console.auditor import auditor_router
from services.console.break_glass import break_glass_router
from services.console.commands import ISSUER, CaseCommands
from services.console.device import IntakeDoor, device_router
from services.console.oidc import OidcClient, load_providers
from services.console.oidc_signin import oidc_router
from services.console.overview_pages import overview_router
from services.console.pages import pages_router
from services.console.projection import CONSOLE_READ_MODEL, on_events
from services.console.push_device import PushDoor, push_device_router
from services.console.settings import ConsoleSettings
from services.console.signin import sign_in_router
from services.console.store import SCHEMA
from services.console.web import Context, Cookies, page, security_headers
from services.routing.policy.model import Policy
from services.routing.policy_book import policies_in
from shared.actor_tokens import load_or_create_issuer_key
from shared.collector import settle_collector
from shared.contracts.account_events import AccountChanged
from shared.contracts.envelope import Event, utc_now
from shared.contracts.record_events import RecordViewed
from shared.runtime import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.tracing import shutdown_tracing

STATIC = Path(str(files("services.console") / "static"))
# The service worker's push handling is notifications' own (it composes what a push says): one copy, served by both.
PUSH_ALERTS = Path(str(files("services.notifications") / "static" / "push-alerts.js"))
HEADINGS = {400: "That did not make sense", 403: "Not for you", 404: "Not found", 409: "Refused"}


def folder_policies(settings: Settings) -> dict[str, Policy]:
    """Each school's policy in the policy folder (the admin pages use it until routing's adoption is projected)."""
    return {policy.school.id: policy for _, policy in policies_in(settings.policy_dir)}


def school_kinds(settings: Settings) -> dict[str, list[tuple[str, str]]]:
    """Each school's kinds of concern (id and label), for the report form."""
    return {policy.school.id: [(k.id, k.label) for k in policy.kinds] for _, policy in policies_in(settings.policy_dir)}


def create_app(
    settings: Settings, *, console: ConsoleSettings | None = None, clock: Callable[[], datetime] = utc_now
) -> tuple[FastAPI, ServiceRuntime]:
    """Build the console for these settings."""
    console = console or ConsoleSettings()
    runtime = ServiceRuntime(settings, service="console", schema=SCHEMA)
    runtime.consumer(
        Event,
        durable=CONSOLE_READ_MODEL,
        batch_handler=on_events,
        filter_subject=runtime.subjects.all_events,
        idempotent=True,
        batch_window=console.projection_window_seconds,
        batch_size=console.projection_batch_size,
    )
    runtime.publishes(RecordViewed, AccountChanged)
    subject = runtime.subjects.command("routing", "case")

    async def ask_routing(body: bytes) -> bytes:
        reply = await runtime.broker.request(body, subject, timeout=10.0)
        return bytes(reply.body)

    async def ask(body: bytes, to: str) -> bytes:
        reply = await runtime.broker.request(body, to, timeout=30.0)  # a replay or an export reads a whole ledger
        return bytes(reply.body)

    async def ask_routing_to_adopt(body: bytes) -> bytes:
        reply = await runtime.broker.request(body, runtime.subjects.command("routing", "policy"), timeout=20.0)
        return bytes(reply.body)

    async def ask_notifications(body: bytes) -> bytes:
        reply = await runtime.broker.request(body, runtime.subjects.notifications_push, timeout=10.0)
        return bytes(reply.body)

    folder = folder_policies(settings)
    providers = load_providers(console.oidc_file)
    # The sign-in form's CSRF key: derived from the deployment's kept secret, so every instance agrees.
    key_source = (settings.signing_key or "").encode() or utc_now().isoformat().encode()
    context = Context(
        sessions=runtime.sessions,
        uow=runtime.uow,
        settings=console,
        cookies=Cookies(secure=console.secure_cookies),
        trusts={school: policy.school.trust for school, policy in folder.items()},
        clock=clock,
        sign_in_key=hashlib.sha256(b"console-sign-in:" + key_source).digest(),
        sign_in_options=tuple((p.id, p.label) for p in providers.values()),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await runtime.broker.start()
        try:
            yield
        finally:
            await runtime.broker.stop()
            await runtime.stop()

    app = FastAPI(title="Safeguard console", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    headers = security_headers(secure=console.secure_cookies)

    @app.middleware("http")
    async def secure_every_answer(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(headers)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(HTTPException)
    async def error_page(request: Request, error: HTTPException) -> Response:
        if error.status_code in (301, 302, 303, 307):
            return Response(status_code=error.status_code, headers=error.headers)
        detail = str(error.detail) if isinstance(error.detail, str) else ""
        heading = HEADINGS.get(error.status_code, "Something went wrong")
        return page(request, "error.html", status_code=error.status_code, heading=heading, detail=detail, visit=None)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/sw.js")
    async def service_worker() -> FileResponse:
        return FileResponse(STATIC / "sw.js", media_type="text/javascript")

    @app.get("/push-alerts.js")
    async def push_alerts() -> FileResponse:
        return FileResponse(PUSH_ALERTS, media_type="text/javascript")

    @app.get("/manifest.webmanifest")
    async def manifest() -> FileResponse:
        return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(sign_in_router(context))
    redirect_uri = console.public_url.rstrip("/") + "/sign-in/oidc-callback"
    clients = {p.id: OidcClient(p, redirect_uri=redirect_uri) for p in providers.values()}
    app.include_router(oidc_router(context, clients=clients, folder=folder))
    app.include_router(device_router(context, kinds=school_kinds(settings), intake=IntakeDoor(console.intake_url)))
    # The console vouches for the signed-in person to routing with its own key (routing never believes a role).
    key = load_or_create_issuer_key(settings.actor_keys_dir, issuer=ISSUER)
    # Tokens carry real time (the page clock is a test seam), so routing never sees one from the future.
    app.include_router(pages_router(context, commands=CaseCommands(ask_routing, key=key, clock=utc_now)))
    app.include_router(overview_router(context))
    app.include_router(break_glass_router(context))
    app.include_router(push_device_router(context, push=PushDoor(ask_notifications, key=key, clock=utc_now)))
    audit = AuditClient(
        ask,
        query_subject=runtime.subjects.audit_query,
        export_subject=runtime.subjects.audit_export,
        key=key,
        clock=utc_now,
    )
    app.include_router(auditor_router(context, audit=audit))
    admin = Admin(context=context, folder=folder)
    app.include_router(admin_router(admin))
    adoption = CaseCommands(ask_routing_to_adopt, key=key, clock=utc_now)
    app.include_router(admin_policy_router(admin, policy_requests=adoption))
    return app, runtime


def main() -> None:
    import uvicorn

    console = ConsoleSettings()
    app, _ = create_app(get_settings(), console=console)
    settle_collector()
    try:
        uvicorn.run(app, host=console.http_host, port=console.http_port, log_level="warning")
    finally:
        shutdown_tracing()
