"""Admin pages for policy versions: upload a file, see `policy check` and a diff, adopt it through routing.

Notification settings the policy holds (a person's own choice of channels where the policy's `personal_choice`
allows one, and the school's quiet hours) are edited the same way: the change becomes the next version of the
policy, shown with its check and diff, and adopted by routing, which owns adoption and checks who asks.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from services.console.admin import Admin
from services.console.admin_store import Adopted
from services.console.commands import CaseCommands
from services.console.passwords import same
from services.console.policy_drafts import (
    LARGEST_UPLOAD,
    Draft,
    as_yaml,
    draft,
    with_person_quiet_hours,
    with_preference,
    with_quiet_hours,
)
from services.console.web import Visit, page
from services.routing.policy.notifying import URGENT

ADOPT = "adopt_policy"
CHANNELS = ("push", "email", "sms")


async def _posted(request: Request, visit: Visit) -> tuple[dict[str, str], str]:
    """The form's text fields (its CSRF token checked) and the uploaded policy file's text, if any."""
    form = await request.form()
    if not same(str(form.get("csrf_token", "")), visit.csrf_token):
        raise HTTPException(status_code=403, detail="This form has expired. Go back, reload the page and try again.")
    upload = form.get("policy_file")
    text = ""
    if isinstance(upload, UploadFile):
        raw = await upload.read(LARGEST_UPLOAD + 1)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(status_code=400, detail="The policy file must be UTF-8 text (YAML).") from None
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    fields["channels"] = ",".join(v for k, v in form.multi_items() if k == "channel" and isinstance(v, str))
    return fields, text or fields.get("policy_text", "")


def _time(value: str) -> time | None:
    try:
        return time.fromisoformat(value) if value else None
    except ValueError:
        raise HTTPException(status_code=400, detail="Times are written as HH:MM, e.g. 21:00.") from None


def admin_policy_router(admin: Admin, *, policy_requests: CaseCommands) -> APIRouter:
    router = APIRouter()
    context = admin.context

    def preview(
        request: Request, visit: Visit, adopted: Adopted, text: str, *, said: str = "", status: int = 200
    ) -> Response:
        proposed: Draft = draft(
            text,
            school_id=adopted.school_id,
            adopted=adopted.document,
            adopted_version=adopted.version,
            today=context.clock().date(),
        )
        code = status if status != 200 else (200 if proposed.adoptable else 400)
        return page(
            request, "admin_policy.html", status_code=code, visit=visit, adopted=adopted, draft=proposed, said=said
        )

    @router.get("/admin/schools/{school_id}/policy.yaml")
    async def download(request: Request, school_id: str) -> Response:
        visit = await admin.visit(request)
        adopted = await admin.school(visit, school_id)
        disposition = f'attachment; filename="{school_id}-v{adopted.version}.yaml"'
        return Response(
            as_yaml(adopted.document),
            media_type="application/yaml; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )

    @router.post("/admin/schools/{school_id}/policy/check")
    async def check(request: Request, school_id: str) -> Response:
        visit = await admin.visit(request)
        _, text = await _posted(request, visit)
        return preview(request, visit, await admin.school(visit, school_id), text)

    @router.post("/admin/schools/{school_id}/quiet-hours")
    async def quiet_hours(request: Request, school_id: str) -> Response:
        visit = await admin.visit(request)
        fields, _ = await _posted(request, visit)
        adopted = await admin.school(visit, school_id)
        starts, ends = _time(fields.get("starts", "")), _time(fields.get("ends", ""))
        document = with_quiet_hours(adopted.document, starts=starts, ends=ends)
        return preview(request, visit, adopted, as_yaml(document))

    @router.post("/admin/schools/{school_id}/people/{person_id}/quiet-hours")
    async def person_quiet_hours(request: Request, school_id: str, person_id: str) -> Response:
        visit = await admin.visit(request)
        fields, _ = await _posted(request, visit)
        adopted = await admin.school(visit, school_id)
        policy = adopted.policy()
        if policy is None or policy.person(person_id) is None:
            raise HTTPException(status_code=404, detail="The policy names nobody with that id.")
        starts, ends = _time(fields.get("starts", "")), _time(fields.get("ends", ""))
        document = with_person_quiet_hours(adopted.document, person_id=person_id, starts=starts, ends=ends)
        return preview(request, visit, adopted, as_yaml(document))

    @router.post("/admin/schools/{school_id}/people/{person_id}/channels")
    async def channels(request: Request, school_id: str, person_id: str) -> Response:
        visit = await admin.visit(request)
        fields, _ = await _posted(request, visit)
        adopted = await admin.school(visit, school_id)
        policy = adopted.policy()
        person = policy.person(person_id) if policy else None
        if policy is None or person is None:
            raise HTTPException(status_code=404, detail="The policy names nobody with that id.")
        if not set(policy.notifications.personal_choice) - URGENT:
            raise HTTPException(status_code=400, detail="The policy gives people no choice of channels.")
        chosen = tuple(c for c in CHANNELS if c in fields["channels"].split(","))
        have = {"push": person.contact.push, "email": bool(person.contact.email), "sms": bool(person.contact.phone)}
        if [c for c in chosen if not have[c]]:
            raise HTTPException(status_code=400, detail="Choose only channels the person has an address for.")
        document = with_preference(adopted.document, person_id=person_id, prefer=chosen)
        return preview(request, visit, adopted, as_yaml(document))

    @router.post("/admin/schools/{school_id}/policy/adopt")
    async def adopt(request: Request, school_id: str) -> Response:
        visit = await admin.visit(request)
        _, text = await _posted(request, visit)
        adopted = await admin.school(visit, school_id)
        proposed = draft(
            text,
            school_id=school_id,
            adopted=adopted.document,
            adopted_version=adopted.version,
            today=context.clock().date(),
        )
        if not proposed.adoptable:
            return preview(request, visit, adopted, text)
        document: dict[str, Any] = {
            "command": ADOPT,
            "school_id": school_id,
            "policy": text,
            **policy_requests.assertion(visit.principal, school_id=school_id),
        }
        reply = await policy_requests.send(document)
        if reply.get("ok"):
            return RedirectResponse(f"/admin/schools/{school_id}?adopted={reply.get('version')}", status_code=303)
        return preview(request, visit, adopted, text, said=str(reply.get("error", "refused")), status=409)

    return router
