"""Spans leave the process over OTLP/HTTP when the standard endpoint variable is set; shutdown flushes them."""

from __future__ import annotations

import pytest

from shared.tracing import tracer_provider
from tests.support.otlp import otlp_receiver

pytestmark = pytest.mark.integration


def test_spans_reach_the_otlp_endpoint_and_shutdown_sends_what_is_still_queued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        # A schedule longer than the test: only the flush at shutdown can deliver the spans.
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
        provider = tracer_provider("fixture-test")
        tracer = provider.get_tracer("export-test")
        with tracer.start_as_current_span("outer") as outer, tracer.start_as_current_span("inner"):
            pass
        assert receiver.spans() == []
        provider.shutdown()
        spans = {span.name: span for span in receiver.spans()}
    assert set(spans) == {"outer", "inner"}
    assert spans["inner"].parent_span_id == spans["outer"].span_id == f"{outer.get_span_context().span_id:016x}"
    assert spans["inner"].trace_id == spans["outer"].trace_id
    assert {span.service for span in spans.values()} == {"safeguard-fixture-test"}
