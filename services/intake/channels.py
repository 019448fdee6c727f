"""Every way a concern arrives, mounted on the intake app: JSON API, inbound email, form webhooks, report pages."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI

from services.intake import email_http, http, status_http, web_form, webhook_http
from services.intake.attachments import AttachmentStore
from services.intake.email_in import email_parser
from services.intake.gate import build_gate
from services.intake.handlers import Intake
from services.intake.smtp import mailboxes, own_domains
from shared.contracts.envelope import utc_now
from shared.settings import Settings


def known_schools(policy_dir: str) -> frozenset[str]:
    """Schools this deployment serves: one policy file `<school_id>.yaml` each."""
    return frozenset(path.stem for path in Path(policy_dir).glob("*.yaml"))


def include_channels(app: FastAPI, *, intake: Intake, settings: Settings) -> http.ConcernShortcut:
    """Mount every HTTP channel, all sharing one gate (size limit, per-client rate); the JSON reports' shortcut
    (`http.IntakeApp` takes it) answers with the same route's work."""
    gate = build_gate(intake, settings=settings)
    report = http.ReportConcern(gate=gate, known_schools=known_schools(settings.policy_dir))
    app.include_router(http.router(report=report))
    parse_email = email_parser(own_domains=own_domains(settings))
    app.include_router(email_http.router(gate=gate, addresses=mailboxes(settings), parse=parse_email))
    app.include_router(
        webhook_http.router(
            gate=gate,
            sources=webhook_http.load_sources(settings),
            uow=intake.uow,
            tolerance=settings.intake_webhook_tolerance_seconds,
            clock=utc_now,
        )
    )
    form_settings = web_form.FormSettings(
        signing_key=settings.signing_key or secrets.token_hex(32),
        max_form_bytes=settings.intake_max_form_bytes,
        max_attachment_bytes=settings.intake_max_attachment_bytes,
        attachments=AttachmentStore(Path(settings.intake_attachments_dir)),
    )
    specs = web_form.load_form_specs(settings.policy_dir)
    app.include_router(web_form.router(gate=gate, specs=specs, settings=form_settings))
    app.include_router(status_http.router(gate=gate))
    return http.ConcernShortcut(report)
