"""The web report form: a chooser, one page per school, server-rendered and usable without JavaScript."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.intake import csrf
from services.intake.attachments import AttachmentStore
from services.intake.door import refuse
from services.intake.form_data import ABOUT, ANSWERS, REPORTER_ROLES, FormSpec, Submission, concern_from_form, form_spec
from services.intake.form_data import read_form as read_posted_form
from services.intake.gate import Admission, Gate
from services.intake.handlers import Accepted
from services.routing.policy.load import load_policy
from shared.contracts.concern import Channel, ConcernReport

log = logging.getLogger(__name__)
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(default=True)
)


def load_form_specs(policy_dir: str) -> dict[str, FormSpec]:
    """Each school's report page, from the policy files that load; a broken file leaves its school without a page."""
    specs = {}
    for path in sorted(Path(policy_dir).glob("*.yaml")):
        try:
            spec = form_spec(load_policy(path))
        except Exception as error:
            log.warning("no report page for %s: its policy does not load (%s)", path.stem, type(error).__name__)
            continue
        specs[spec.school_id] = spec
    return specs


@dataclass(frozen=True)
class FormSettings:
    signing_key: str
    max_form_bytes: int
    max_attachment_bytes: int
    attachments: AttachmentStore


def _field_errors(errors: list[dict[str, Any]], *, spec: FormSpec) -> dict[str, str]:
    """Validation errors keyed by the form control that caused them, in the reporter's words."""
    by_field = {q.field: q.id for q in spec.questions if q.field}
    controls = {"reporter": "reporter_role", "people": "about"}
    shown: dict[str, str] = {}
    for error in errors:
        top = error["field"].split(".", 1)[0]
        control = controls.get(top) or by_field.get(top) or top
        question = next((q for q in spec.questions if q.id == control), None)
        shown.setdefault(control, f"{question.text if question else control}: {error['message']}")
    return shown


def router(*, gate: Gate, specs: dict[str, FormSpec], settings: FormSettings) -> APIRouter:
    """The report pages."""
    pages = APIRouter(include_in_schema=False)

    def page(name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status, headers=headers)

    def form_page(spec: FormSpec, *, status: int = 200, **context: Any) -> HTMLResponse:
        token = csrf.new_token(settings.signing_key)
        choices = {
            q.id: (
                spec.kinds
                if q.options_from == "kinds"
                else spec.platforms
                if q.options_from
                else [(o, o) for o in q.options]
            )
            for q in spec.questions
            if q.type == "choice"
        }
        response = page(
            "form.html",
            status=status,
            spec=spec,
            csrf_token=token,
            reporter_roles=REPORTER_ROLES,
            about_options=ABOUT,
            yes_no=ANSWERS,
            choices=choices,
            max_attachment_mb=settings.max_attachment_bytes // (1024 * 1024),
            values=context.pop("values", {}),
            errors=context.pop("errors", {}),
            **context,
        )
        response.set_cookie(csrf.COOKIE, token, httponly=True, samesite="strict", path="/report")
        return response

    def school(school_id: str) -> FormSpec:
        spec = specs.get(school_id)
        if spec is None:
            raise HTTPException(404, f"no report page for school {school_id!r}")
        return spec

    @pages.get("/report", response_class=HTMLResponse)
    async def chooser() -> HTMLResponse:
        return page("chooser.html", schools=sorted(specs.values(), key=lambda s: s.school_name))

    @pages.get("/report/{school_id}", response_class=HTMLResponse)
    async def report_page(school_id: str) -> HTMLResponse:
        return form_page(school(school_id))

    @pages.post("/report/{school_id}", response_class=HTMLResponse)
    async def submit_report(request: Request, school_id: str) -> HTMLResponse:
        spec = school(school_id)
        arrival = await gate.arrive(request, max_bytes=settings.max_form_bytes)
        submission, problem, status_if_refused = _checked_form(
            arrival.body.data,
            content_type=arrival.content_type,
            cookie=request.cookies.get(csrf.COOKIE),
            key=settings.signing_key,
        )
        token = submission.one(csrf.FIELD) if submission else None
        attachments: tuple[str, ...] = ()
        if submission is not None and problem is None and arrival.wait == 0 and not arrival.body.truncated:
            kept = [
                await settings.attachments.keep(upload.data, max_bytes=settings.max_attachment_bytes)
                for upload in submission.files
                if upload.field_name == "attachments"
            ]
            attachments = tuple(attachment.describe() for attachment in kept)
        refused = refuse(problem or "?", code="csrf" if status_if_refused == 403 else "unreadable_form")
        admission = await gate.keep(
            arrival,
            school_id=spec.school_id,
            channel=Channel.web_form,
            parse=_parser(submission, spec, attachments) if submission and problem is None else refused,
            accepts=FORM_TYPES,
            idempotency_key=token if problem is None else None,  # a double-click sends one token: one concern
        )
        return answer_page(admission, spec=spec, submission=submission, status_if_refused=status_if_refused)

    def answer_page(
        admission: Admission, *, spec: FormSpec, submission: Submission | None, status_if_refused: int
    ) -> HTMLResponse:
        outcome = admission.outcome
        if isinstance(outcome, Accepted):
            return page("received.html", spec=spec, reference=outcome.reference, secret=admission.receipt_secret)
        if admission.status == 422 and status_if_refused == 422 and submission is not None:
            values = {name: values[0] for name, values in submission.fields.items() if values and name != csrf.FIELD}
            errors = _field_errors(outcome.errors, spec=spec) or {outcome.reason.split(":", 1)[0]: outcome.reason}
            return form_page(spec, status=422, values=values, errors=errors, raw_input_id=str(outcome.raw_input_id))
        return page(
            "refused.html",
            status=status_if_refused if admission.status == 422 else admission.status,
            headers=admission.headers,
            reason=outcome.reason,
            raw_input_id=str(outcome.raw_input_id),
            retry_after=admission.headers.get("Retry-After"),
            school_id=spec.school_id,
        )

    return pages


def _checked_form(
    body: bytes, *, content_type: str, cookie: str | None, key: str
) -> tuple[Submission | None, str | None, int]:
    """The posted form, or why it cannot be used and the status that says so (422 unreadable, 403 CSRF)."""
    try:
        submission = read_posted_form(body, content_type=content_type)
    except ValueError as unreadable:
        return None, str(unreadable), 422
    if not csrf.token_is_good(key, cookie=cookie, field=submission.one(csrf.FIELD)):
        return submission, "the form had expired or was not sent from this site: please send it again", 403
    return submission, None, 422


def _parser(submission: Submission, spec: FormSpec, attachments: tuple[str, ...]) -> Callable[[bytes], ConcernReport]:
    """A parse function for `Intake.receive` over a form already read (the same bytes it is handed)."""

    def parse(_: bytes) -> ConcernReport:
        return concern_from_form(submission, spec=spec, attachments=attachments)

    return parse
