"""A contract fuzzer (schemathesis) against the intake app in-process: no 5xx, no undocumented answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.python import asgi

from services.intake.app import create_app
from shared.settings import Settings
from tests.support.intake import one_school

# schemathesis draws with `random` inside its strategies; hypothesis warns about that, not about our code.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
CASES = 200


@pytest.fixture
def intake_app(settings: Settings, tmp_path: Path) -> Iterator[object]:
    """The intake app with a generous rate limit (the fuzzer is one client); its lifespan runs in the fuzzer's loop."""
    app, _ = create_app(one_school(settings, tmp_path, intake_rate_burst=100_000))
    yield app
    asgi.shutdown_lifespans()


def test_the_json_api_never_answers_5xx_and_only_answers_as_documented(intake_app: object) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", intake_app)
    operation = schema["/api/v1/schools/{school_id}/concerns"]["POST"]
    statuses: list[int] = []
    cases = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @hypothesis_settings(
        max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
    )
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        if len(statuses) % 4:  # most cases go to a school that exists, so the body is what is fuzzed
            case.path_parameters = {"school_id": "st-marks"}
        response = case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text

    fuzz()
    assert statuses and max(statuses) < 500
    assert {202, 422} <= set(statuses), sorted(set(statuses))
