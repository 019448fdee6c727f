"""Which span an event names as its trace parent: the handler span it was built in, within the concern's trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import tracing
from shared.consumer import handling
from shared.contracts.envelope import Event, in_current_span
from shared.contracts.events import ConcernReceived
from shared.tracing import current_traceparent, otlp_wanted, trace_id_of
from tests.support.factories import concern_received

# A provider of the test's own: the process-wide one is not touched (it can be set only once).
TRACER = TracerProvider().get_tracer("trace-parentage-test")


@contextmanager
def span_under(traceparent: str | None) -> Iterator[str]:
    """A recording span, child of `traceparent` (a new trace when None); yields its own traceparent."""
    token = None
    if traceparent:
        token = otel_context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    try:
        with TRACER.start_as_current_span("handler"):
            own = current_traceparent()
            assert own is not None
            yield own
    finally:
        if token is not None:
            otel_context.detach(token)


def caused_by(cause: Event[Any], **extra: Any) -> Any:
    return ConcernReceived.new(
        cause.payload,
        school_id=cause.school_id,
        aggregate_id="case-1",
        actor=cause.actor,
        occurred_at=cause.occurred_at,
        cause=cause,
        **extra,
    )


def test_an_event_built_in_a_handler_span_of_the_concerns_trace_names_that_span() -> None:
    cause = concern_received()
    with span_under(cause.traceparent) as handler_span:
        effect = caused_by(cause)
    assert effect.traceparent == handler_span
    assert trace_id_of(effect.traceparent) == trace_id_of(cause.traceparent)


def test_an_event_built_outside_any_span_keeps_its_causes_traceparent() -> None:
    cause = concern_received()
    assert caused_by(cause).traceparent == cause.traceparent


def test_a_span_of_another_trace_does_not_pull_the_event_out_of_the_concerns_trace() -> None:
    cause = concern_received()
    with span_under(None):
        effect = caused_by(cause)
    assert effect.traceparent == cause.traceparent


def test_a_first_event_built_in_a_span_starts_from_that_span() -> None:
    template = concern_received()
    with span_under(None) as intake_span:
        first = ConcernReceived.new(
            template.payload,
            school_id="st-marks",
            aggregate_id="concern-1",
            actor=template.actor,
            occurred_at=template.occurred_at,
        )
    assert first.traceparent == intake_span


def test_events_built_directly_are_reparented_on_the_active_span_of_their_trace() -> None:
    concern_trace, other_trace = concern_received(), concern_received()
    with span_under(concern_trace.traceparent) as handler_span:
        moved, kept = in_current_span([concern_trace, other_trace])
    assert moved.traceparent == handler_span
    assert moved.model_copy(update={"traceparent": concern_trace.traceparent}) == concern_trace
    assert kept is other_trace


def test_without_an_exporter_no_handler_span_is_made_and_the_event_keeps_its_causes_traceparent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "_exporting", False)
    cause = concern_received()
    with handling("routing-concerns", cause) as span:
        effect = caused_by(cause)
    assert not span.is_recording()
    assert effect.traceparent == cause.traceparent


@pytest.mark.parametrize(
    ("environ", "exported"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"}, False),
    ],
)
def test_spans_are_exported_only_when_an_otlp_endpoint_is_named(environ: dict[str, str], exported: bool) -> None:
    assert otlp_wanted(environ) is exported
