"""One concern, one trace: every service exports its spans over OTLP and each hop is a child of its cause."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.e2e.conftest import System, started_system
from tests.e2e.test_concern_end_to_end import audit_rows, report, types
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SERVICES = {"safeguard-intake", "safeguard-routing", "safeguard-notifications", "safeguard-audit"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
async def traced_system(e2e_settings: Settings, tmp_path: Path, receiver: OtlpReceiver) -> AsyncIterator[System]:
    """The whole system, every service exporting its spans to `receiver` within a tenth of a second."""
    exporting = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    async with started_system(e2e_settings, tmp_path, extra_env=exporting) as running:
        yield running


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """The span's parent, grandparent, ... as far as the received spans go."""
    chain: list[ReceivedSpan] = []
    parent = span.parent_span_id
    while parent is not None and parent in by_id:
        chain.append(by_id[parent])
        parent = by_id[parent].parent_span_id
    return chain


def handling(spans: list[ReceivedSpan], *, service: str, event_ids: set[str]) -> list[ReceivedSpan]:
    """The spans in which `service` handled one of `event_ids`."""
    return [s for s in spans if s.service == service and s.attributes.get("safeguard.event_id") in event_ids]


def complete(spans: list[ReceivedSpan], *, received: set[str], requested: set[str]) -> bool:
    """Every service has exported its part and no span's parent is still missing (but the root's)."""
    by_id = {span.span_id: span for span in spans}
    return (
        {span.service for span in spans} >= SERVICES
        and bool(handling(spans, service="safeguard-routing", event_ids=received))
        and bool(handling(spans, service="safeguard-notifications", event_ids=requested))
        and sum(span.parent_span_id not in by_id for span in spans) == 1
    )


async def test_one_concern_is_one_trace_and_each_hop_is_a_child_of_the_hop_that_caused_it(
    traced_system: System, receiver: OtlpReceiver
) -> None:
    reference = await report(traced_system)
    rows = await eventually(
        lambda: audit_rows(traced_system, reference),
        until=lambda rows: "notification.sent" in types(rows),
        timeout=60,
        what="the notification in the audit record",
    )
    (trace_id,) = {row["trace_id"] for row in rows}
    ids = {kind: {json.loads(r["event"])["event_id"] for r in rows if r["event_type"] == kind} for kind in types(rows)}
    received, requested = ids["concern.received"], ids["notification.requested"]

    async def concern_spans() -> list[ReceivedSpan]:
        return [span for span in receiver.spans() if span.trace_id == trace_id]

    spans = await eventually(
        concern_spans,
        until=lambda spans: complete(spans, received=received, requested=requested),
        timeout=30,
        what="every service's spans of the concern, parents included",
    )

    by_id = {span.span_id: span for span in spans}
    (root,) = [span for span in spans if span.parent_span_id not in by_id]
    assert root.service == "safeguard-intake" and root.parent_span_id is None
    every_event = set().union(*ids.values())
    about_the_concern = [span for span in receiver.spans() if span.attributes.get("safeguard.event_id") in every_event]
    assert {span.trace_id for span in about_the_concern} == {trace_id}
    assert {span.service for span in about_the_concern} >= SERVICES

    routing_handler = handling(spans, service="safeguard-routing", event_ids=received)[0]
    assert root in ancestors(routing_handler, by_id)
    for notifications_handler in handling(spans, service="safeguard-notifications", event_ids=requested):
        assert routing_handler in ancestors(notifications_handler, by_id), notifications_handler.name
