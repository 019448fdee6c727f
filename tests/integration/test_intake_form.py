"""The web report form against real NATS + PostgreSQL: filled like a reporter would, every post kept."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.intake.app import create_app
from services.intake.store import raw_inputs
from shared.db import transaction
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.support.running import jetstream, running, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PROGRAM = b"MZ\x90\x00" + b"\x00" * 200


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "policy_dir": str(REPO_ROOT / "deploy" / "policies"),
            "intake_attachments_dir": str(tmp_path / "attachments"),
            "intake_rate_burst": 5,
        }
    )


def answers(**changes: str) -> dict[str, str]:
    return {
        "reporter_role": "parent_carer",
        "reporter_name": "A Parent",
        "about": "adult_at_school",
        "about_person_id": "pastoral-lead",
        "kind": "staff_social_media_misuse",
        "immediate_risk": "not_sure",
        "platform": "instagram",
        "summary": "A staff account messaged my child",
        "details": "Synthetic details",
        **changes,
    }


async def open_form(http: httpx.AsyncClient) -> str:
    page = await http.get("/report/st-marks")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return token.group(1)


async def kept(runtime) -> list:
    async with transaction(runtime.sessions) as session:
        return list((await session.execute(sa.select(raw_inputs))).all())


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")


async def test_a_filled_form_with_a_screenshot_becomes_a_concern_about_the_chosen_adult(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), jetstream(settings) as (_, js), client(app) as http:
        token = await open_form(http)
        files = [
            ("attachments", ("shot.png", PNG, "image/png")),
            ("attachments", ("notes.exe.png", PROGRAM, "image/png")),
        ]
        page = await http.post("/report/st-marks", data={**answers(), "csrf_token": token}, files=files)
        reference = re.search(r'id="reference">([^<]+)<', page.text)
        [event] = await eventually(
            lambda: stream_events(js, settings, "concern.received"), until=lambda e: len(e) == 1, what="concern"
        )
    assert page.status_code == 200 and reference is not None and "What happens next" in page.text
    concern = event.payload
    assert concern.reference == reference.group(1) and concern.channel == "web_form"
    assert (concern.people[0].person_id, concern.immediate_risk) == ("pastoral-lead", "not_sure")
    listed = concern.answers["attachments"]
    assert "image/png" in listed and "quarantined" in listed  # the program posing as a picture is kept apart
    stored = sorted(
        p.relative_to(Path(settings.intake_attachments_dir)).parts[0]
        for p in Path(settings.intake_attachments_dir).rglob("*")
        if p.is_file()
    )
    assert len(stored) == 2 and "quarantine" in stored


async def test_a_post_from_another_site_is_403_and_still_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), client(app) as http:
        page = await http.post("/report/st-marks", data={**answers(), "csrf_token": "forged.0000"})
        [raw] = await kept(runtime)
    assert page.status_code == 403 and "not sent from this site" in page.text
    assert raw.status == "rejected" and b"summary=A+staff+account+messaged+my+child" in raw.body


async def test_a_form_missing_its_summary_comes_back_with_the_error_and_the_answers_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), client(app) as http:
        token = await open_form(http)
        page = await http.post("/report/st-marks", data={**answers(summary=""), "csrf_token": token})
        [raw] = await kept(runtime)
    assert page.status_code == 422 and 'href="#summary"' in page.text and "There is a problem" in page.text
    assert 'value="A Parent"' in page.text  # what the reporter typed is still there
    assert raw.status == "rejected"


async def test_a_reporter_posting_too_fast_gets_429_with_retry_after_and_every_post_is_kept(settings: Settings) -> None:
    app, runtime = create_app(settings)
    async with running(runtime, subscribers=False), client(app) as http:
        pages = [
            await http.post(
                "/report/st-marks", data={**answers(summary=f"Report {n}"), "csrf_token": await open_form(http)}
            )
            for n in range(8)
        ]
        rows = await kept(runtime)
    limited = [page for page in pages if page.status_code == 429]
    assert limited and all(int(page.headers["retry-after"]) >= 1 for page in limited)
    assert "Please wait" in limited[0].text
    assert len(rows) == 8
