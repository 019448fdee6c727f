"""The JSON reports' shortcut past FastAPI: which requests it takes, and that it answers as the FastAPI route did."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.intake.gate import Admission, Arrival
from services.intake.handlers import Accepted
from services.intake.http import ConcernShortcut, IntakeApp, ReportConcern, router
from shared.tracing import current_traceparent, trace_id_of

PATH = "/api/v1/schools/st-marks/concerns"


class FakeGate:
    """Accepts every report; remembers the trace each was kept in, or fails when told to."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.kept: list[dict[str, Any]] = []

    async def arrive(self, request: Any) -> Arrival:
        return await request.body()  # type: ignore[no-any-return]

    async def keep(self, arrival: Any, **given: Any) -> Admission:
        if self.fail:
            raise RuntimeError("the database went away")
        self.kept.append({**given, "body": arrival, "traceparent": current_traceparent()})
        return Admission(Accepted("SG-2026-ABCDEFGH", uuid.uuid4(), receipt_secret="secret"), 202, receipt_secret="s")


def intake_app(gate: FakeGate) -> IntakeApp:
    report = ReportConcern(gate=gate, known_schools=frozenset({"st-marks", "St_Marks"}))  # type: ignore[arg-type]
    app = IntakeApp()
    app.include_router(router(report=report))
    app.shortcut = ConcernShortcut(report)
    return app


def scope(path: str = PATH, *, method: str = "POST", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": []}


def test_the_shortcut_takes_only_a_post_of_a_report_to_a_known_school() -> None:
    shortcut = intake_app(FakeGate()).shortcut
    assert shortcut is not None
    assert shortcut.school_of(scope()) == "st-marks"
    refused = [
        scope(method="GET"),
        scope(PATH + "/"),
        scope("/api/v1/schools/elsewhere/concerns"),
        scope("/api/v1/schools/St_Marks/concerns"),  # known, but not a valid school id: FastAPI refuses it
        scope("/api/v2/schools/st-marks/concerns"),
        scope("//api/v1/schools/st-marks/concerns"),
        scope(root_path="/intake"),
        {"type": "websocket", "path": PATH, "headers": []},
    ]
    assert [shortcut.school_of(s) for s in refused] == [None] * len(refused)


async def test_a_report_through_the_shortcut_is_answered_as_the_route_answers_it() -> None:
    gate = FakeGate()
    transport = httpx.ASGITransport(app=intake_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        headers = [("Idempotency-Key", "first"), ("Idempotency-Key", "second"), ("Content-Type", "application/json")]
        answer = await client.post(PATH, content=b"{}", headers=headers)
        unknown = await client.post("/api/v1/schools/elsewhere/concerns", content=b"{}")
    assert answer.status_code == 202 and answer.json()["reference"] == "SG-2026-ABCDEFGH"
    assert answer.json()["receipt_secret"] == "s" and answer.headers["content-type"] == "application/json"
    [kept] = gate.kept
    assert kept["school_id"] == "st-marks" and kept["idempotency_key"] == "first" and kept["body"] == b"{}"
    assert unknown.status_code == 404  # FastAPI's route answered it


async def test_the_shortcut_continues_the_callers_trace_as_fastapis_request_span_did() -> None:
    gate = FakeGate()
    caller = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    transport = httpx.ASGITransport(app=intake_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        await client.post(PATH, content=b"{}", headers={"traceparent": caller})
        await client.post(PATH, content=b"{}")
    continued, fresh = (kept["traceparent"] for kept in gate.kept)
    assert continued is not None and trace_id_of(continued) == trace_id_of(caller)
    assert fresh is None or trace_id_of(fresh) != trace_id_of(caller)


async def test_an_error_is_a_plain_500_and_goes_on_to_the_server_as_starlette_does() -> None:
    transport = httpx.ASGITransport(app=intake_app(FakeGate(fail=True)), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        answer = await client.post(PATH, content=b"{}")
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    raising = httpx.ASGITransport(app=intake_app(FakeGate(fail=True)))
    async with httpx.AsyncClient(transport=raising, base_url="http://intake") as client:
        with pytest.raises(RuntimeError, match="went away"):
            await client.post(PATH, content=b"{}")
