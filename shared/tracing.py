"""OpenTelemetry set-up and the one way a handler joins the concern's trace.

The trace context travels twice: in the `traceparent` message header (faststream's telemetry middleware
reads it) and in the event envelope (so an event published later from the outbox, or replayed, still names
the trace of the concern that caused it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def configure_tracing(service: str, *, console: bool = False) -> TracerProvider:
    """Install a tracer provider for this process; spans go to stderr when `console` is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"safeguard-{service}"}))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer("safeguard")


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, if there is one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id inside a traceparent (`00-<trace id>-<span id>-<flags>`)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextmanager
def span_in_trace(name: str, *, traceparent: str | None, **attributes: Any) -> Iterator[trace.Span]:
    """Start a span in the trace `traceparent` names, unless the active span is already in that trace."""
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
