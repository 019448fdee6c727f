"""A healthy start and a concern handled leave no ERROR and no traceback in any service's log."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import SERVICES, System
from tests.e2e.test_concern_end_to_end import audit_rows, report, types
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

ALARMING = re.compile(r"\bERROR\b|\bCRITICAL\b|Traceback|please consider opening an issue")


async def test_nothing_is_logged_as_an_error_when_nothing_is_wrong(system: System) -> None:
    reference = await report(system)
    await eventually(
        lambda: audit_rows(system, reference),
        until=lambda rows: "notification.sent" in types(rows) and "deadline.set" in types(rows),
        timeout=60,
        what="the concern through every service",
    )
    alarms = {name: [line for line in system.log_of(name).splitlines() if ALARMING.search(line)] for name in SERVICES}
    assert alarms == {name: [] for name in SERVICES}
