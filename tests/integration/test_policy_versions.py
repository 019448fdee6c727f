"""Policy versions against real NATS + PostgreSQL: a new version is adopted as an event; an unversioned edit is
refused; a case keeps the version it was routed under, and so do its later escalations."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from services.routing.app import RoutingService
from shared.settings import Settings
from tests.conftest import REPO_ROOT
from tests.integration.test_timers import Clock, acknowledge_deadlines, start, stop
from tests.support.factories import concern_received
from tests.support.running import jetstream, publish_raw, stream_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
SEED = REPO_ROOT / "deploy" / "policies" / "st-marks.yaml"


def write_policy(folder: Path, *, version: int, headteacher_name: str | None = None) -> None:
    text = SEED.read_text(encoding="utf-8").replace("\nversion: 1\n", f"\nversion: {version}\n", 1)
    if headteacher_name is not None:
        text = text.replace("The Headteacher", headteacher_name, 1)
    (folder / "st-marks.yaml").write_text(text, encoding="utf-8")


async def triage_one(service: RoutingService, js, settings: Settings):
    # Received at the routing clock's time: its deadlines count from it, not from the wall (see `this_morning`).
    concern = concern_received(kind="online_bullying", received_at=service.routing.clock())
    await publish_raw(js, settings, concern)
    found = await eventually(
        lambda: stream_events(js, settings, "case.triaged"),
        until=lambda triaged: any(t.payload.reference == concern.payload.reference for t in triaged),
        what="triage",
    )
    return next(t for t in found if t.payload.reference == concern.payload.reference)


async def test_versions_are_adopted_in_order_and_cases_keep_theirs(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    shutil.copy(SEED, folder / "st-marks.yaml")
    settings = settings.model_copy(update={"policy_dir": str(folder)})
    clock = Clock()
    async with jetstream(settings) as (_, js):
        first = await start(settings, clock)
        try:
            before = await triage_one(first, js, settings)
        finally:
            await stop(first)

        write_policy(folder, version=1, headteacher_name="A Renamed Headteacher")  # edited, version not raised
        refused = await start(settings, clock)
        try:
            unchanged = await triage_one(refused, js, settings)
        finally:
            await stop(refused)

        write_policy(folder, version=2, headteacher_name="A Renamed Headteacher")
        second = await start(settings, clock)
        try:
            after = await triage_one(second, js, settings)
            # The case routed under v1 still escalates (its policy is loaded back from routing.policies).
            [pending] = await acknowledge_deadlines(second, before.payload.case_id)
            clock.now = pending.due_at + timedelta(seconds=1)
            await eventually(lambda: stream_events(js, settings, "case.escalated"), what="escalation of the v1 case")
        finally:
            await stop(second)
        adopted = await stream_events(js, settings, "policy.adopted")
    assert [e.payload.version for e in adopted] == [1, 2]
    assert adopted[0].payload.digest != adopted[1].payload.digest
    assert (before.payload.policy_version, unchanged.payload.policy_version, after.payload.policy_version) == (1, 1, 2)
    assert before.payload.policy_digest == unchanged.payload.policy_digest == adopted[0].payload.digest
