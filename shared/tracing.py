"""OpenTelemetry set-up and the one way a handler joins the concern's trace.

The trace context travels twice: in the `traceparent` message header (faststream's telemetry middleware
reads it) and in the event envelope (so an event published later from the outbox, or replayed, still names
the trace of the concern that caused it). An event carries the span that was active when it was built (the
handler's), so the next hop's span is a child of the hop that caused it, all in the concern's one trace.

Spans leave the process over OTLP/HTTP when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the exporter reads the standard OTEL_* variables itself.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
# Whether finished spans go anywhere; configure_tracing clears it when no exporter is configured, so the spans a
# consumer would open for each event (and those made after the fact for a batch) are not built only to be dropped.
# Events still carry their cause's traceparent then: the trace is kept, only its unexported spans are skipped.
_exporting = True
_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard OTLP endpoint variables ask for spans to be exported."""
    return any(environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)


def tracer_provider(service: str, *, console: bool = False) -> TracerProvider:
    """A tracer provider for `service`: OTLP export when its endpoint is set, stderr when `console`."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"safeguard-{service}"}))
    if otlp_wanted(os.environ):
        # Imported here so a process without an endpoint never loads the exporter and its HTTP stack.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Batched off the hot path; the provider flushes it at exit (shutdown_on_exit) or in shutdown_tracing.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider


def configure_tracing(service: str, *, console: bool = False) -> TracerProvider:
    """Install this process's tracer provider (see `tracer_provider`)."""
    global _exporting
    provider = tracer_provider(service, console=console)
    trace.set_tracer_provider(provider)
    # A provider installed earlier in this process stays (OpenTelemetry allows one); then keep recording.
    _exporting = trace.get_tracer_provider() is not provider or console or otlp_wanted(os.environ)
    return provider


def exporting() -> bool:
    """Whether this process's spans go anywhere (an exporter is configured, or a provider installed earlier)."""
    return _exporting


def shutdown_tracing() -> None:
    """Export the spans still queued and stop the exporters (call once, when the service stops)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer() -> trace.Tracer:
    """The process's tracer, made once per tracer provider (`get_tracer` builds a new one on every call)."""
    global _tracer
    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("safeguard"))
    return _tracer[1]


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if there is one (what the propagator would inject)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def continuing_traceparent(given: str | None) -> str | None:
    """The traceparent for a new event: the active span's if it is in `given`'s trace (or none is given)."""
    active = current_traceparent()
    if active is None or (given is not None and trace_id_of(given) != trace_id_of(active)):
        return given
    return active


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id inside a traceparent (`00-<trace id>-<span id>-<flags>`)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextmanager
def span_in_trace(name: str, *, traceparent: str | None, **attributes: Any) -> Iterator[trace.Span]:
    """Start a span in the trace `traceparent` names, unless the active span is already in that trace.

    Without an exporter no span is made: events built inside carry the active span's traceparent as before, or
    (with none active) their cause's, so they stay in the concern's trace."""
    if not _exporting:
        yield trace.INVALID_SPAN
        return
    active = trace.get_current_span().get_span_context()
    wanted = trace_id_of(traceparent)
    token = None
    if traceparent and not (active.is_valid and f"{active.trace_id:032x}" == wanted):
        token = otel_context.attach(_PROPAGATOR.extract({"traceparent": traceparent}))
    try:
        with tracer().start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        if token is not None:
            otel_context.detach(token)


def record_batch_spans(name: str, handled: Iterable[tuple[str, Any, str | None]], *, started_ns: int) -> None:
    """One span per (event type, event id, traceparent) handled in a batch, from the batch's start to now."""
    if not _exporting:
        return
    ended_ns = time.time_ns()
    for event_type, event_id, traceparent in handled:
        parent = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None
        span = tracer().start_span(
            f"{name} {event_type}",
            context=parent,
            start_time=started_ns,
            attributes={"safeguard.event_id": str(event_id)},
        )
        span.end(end_time=ended_ns)
