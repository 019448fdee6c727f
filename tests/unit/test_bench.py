"""The bench's arithmetic and judgements, without running anything."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.bench.figures import (
    BASELINE_NAMES,
    SERVICE_GROUPS,
    missing_figures,
    per_concern_ms,
    percentile,
    rate,
    ratios,
    summarise_ms,
)
from services.bench.http_client import parse_head, request_bytes
from services.bench.observe import Progress, StreamEvents, concern_problems
from services.bench.profiling import hot_spots
from services.bench.report import markdown
from services.bench.run import _Measurement


@pytest.mark.parametrize(
    ("values", "rank", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 95, 4.0),
        (list(map(float, range(1, 101))), 99, 99.0),
        (list(map(float, range(1, 101))), 100, 100.0),
        ([9.0, 1.0, 5.0], 0, 1.0),
    ],
)
def test_a_percentile_is_the_nearest_rank_and_a_value_that_was_observed(
    values: list[float], rank: float, expected: float
) -> None:
    assert percentile(values, rank) == expected


def test_a_percentile_of_nothing_or_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latencies_are_summarised_in_milliseconds_with_their_count() -> None:
    assert summarise_ms([0.010, 0.020, 0.030, 0.040]) == {
        "count": 4,
        "p50": 20.0,
        "p95": 40.0,
        "p99": 40.0,
        "max": 40.0,
    }
    assert summarise_ms([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_rates_and_cpu_per_concern() -> None:
    assert rate(500, 2.0) == 250.0
    assert rate(5, 0.0) is None
    assert per_concern_ms({"audit": 1.0, "intake": 0.5}, concerns=100) == {"audit": 10.0, "intake": 5.0, "total": 15.0}


def test_each_pipeline_figure_is_set_beside_the_baseline_that_bounds_it() -> None:
    saturation = {"intake_accepts_per_second": 100.0, "events_per_second": 800.0, "concerns_per_second": 100.0}
    baselines: dict[str, float | None] = dict.fromkeys(BASELINE_NAMES, 4000.0)
    baselines["jetstream_publish_async_per_second"] = None
    rows = {(row.figure, row.baseline): row.ratio for row in ratios(saturation, baselines)}
    assert rows[("intake_accepts_per_second", "fastapi_post_per_second")] == 0.025
    assert rows[("events_per_second", "jetstream_publish_awaited_per_second")] == 0.2
    assert rows[("events_per_second", "jetstream_publish_async_per_second")] is None
    assert rows[("concerns_per_second", "postgres_insert_commit_8_connections_per_second")] == 0.025


def complete_report() -> dict[str, Any]:
    summary = {"count": 1, "p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}
    return {
        "schema": "safeguard-bench/1",
        "saturation": {
            "concerns": 10,
            "seconds": 1.0,
            "concerns_per_second": 10.0,
            "intake_accepts_per_second": 20.0,
            "events": 80,
            "events_per_second": 80.0,
        },
        "latency": [
            {
                "offered_per_second": 10.0,
                "intake_reply_ms": summary,
                "to_channel_ms": summary,
                "to_audit_received_ms": summary,
                "to_audit_last_ms": summary,
            }
        ],
        "cpu_ms_per_concern": dict.fromkeys(SERVICE_GROUPS, 1.0),
        "peak_rss_mb": dict.fromkeys(SERVICE_GROUPS, 90.0),
        "baselines": dict.fromkeys(BASELINE_NAMES, 1000.0),
        "ratios": [{"ratio": 0.01}],
        "completeness": {"complete": 10},
    }


def test_a_complete_report_lacks_nothing_and_a_gap_is_named_by_its_path() -> None:
    report = complete_report()
    assert missing_figures(report) == []
    report["latency"][0]["to_channel_ms"] = {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    del report["peak_rss_mb"]["postgres"]
    report["baselines"]["fastapi_post_per_second"] = None
    assert missing_figures(report) == [
        "latency[0].to_channel_ms.p50",
        "latency[0].to_channel_ms.p95",
        "latency[0].to_channel_ms.p99",
        "latency[0].to_channel_ms.max",
        "peak_rss_mb.postgres",
        "baselines.fastapi_post_per_second",
    ]


def test_a_report_without_latency_steps_is_incomplete() -> None:
    report = complete_report()
    report["latency"] = []
    assert missing_figures(report) == ["latency"]


def stream_with(*, requested: int, event_ids: set[str]) -> StreamEvents:
    events = StreamEvents()
    events.correlation_of["SG-1"] = "c1"
    events.event_ids["c1"] = event_ids
    events.requested["c1"] = requested
    return events


def test_a_concern_with_one_case_its_notifications_sent_and_each_event_audited_once_is_complete() -> None:
    events = stream_with(requested=2, event_ids={"e1", "e2", "e3"})
    assert (
        concern_problems("SG-1", events=events, cases=1, deliveries={"c1": (2, 2)}, audited={"c1": ["e1", "e2", "e3"]})
        == []
    )


@pytest.mark.parametrize(
    ("cases", "deliveries", "audited", "problem"),
    [
        (0, {"c1": (2, 2)}, ["e1", "e2", "e3"], "0 cases"),
        (2, {"c1": (2, 2)}, ["e1", "e2", "e3"], "2 cases"),
        (1, {"c1": (2, 1)}, ["e1", "e2", "e3"], "1 of 2 notifications sent (2 claimed)"),
        (1, {}, ["e1", "e2", "e3"], "0 of 2 notifications sent (0 claimed)"),
        (1, {"c1": (2, 2)}, ["e1", "e2"], "1 of 3 events not audited"),
        (1, {"c1": (2, 2)}, ["e1", "e2", "e3", "e3"], "an event audited more than once"),
        (1, {"c1": (2, 2)}, ["e1", "e2", "e3", "e9"], "audited events that are not on the stream"),
    ],
)
def test_what_an_incomplete_concern_lacks_is_said_in_words(
    cases: int, deliveries: dict[str, tuple[int, int]], audited: list[str], problem: str
) -> None:
    events = stream_with(requested=2, event_ids={"e1", "e2", "e3"})
    assert concern_problems("SG-1", events=events, cases=cases, deliveries=deliveries, audited={"c1": audited}) == [
        problem
    ]


def test_a_concern_never_seen_on_the_stream_is_incomplete() -> None:
    assert concern_problems("SG-404", events=StreamEvents(), cases=0, deliveries={}, audited={}) == [
        "no concern.received on the stream"
    ]


@pytest.mark.parametrize(
    ("progress", "expected_cases", "settled"),
    [
        (Progress(cases=10, audited=80, requested=20, sent=20, on_stream=80), 10, True),
        (Progress(cases=9, audited=80, requested=20, sent=20, on_stream=80), 10, False),
        (Progress(cases=10, audited=79, requested=20, sent=20, on_stream=80), 10, False),
        (Progress(cases=10, audited=80, requested=20, sent=19, on_stream=80), 10, False),
        (Progress(), 0, True),
    ],
)
def test_the_pipeline_is_settled_only_when_every_case_audit_and_notification_has_caught_up(
    progress: Progress, expected_cases: int, settled: bool
) -> None:
    assert progress.settled(expected_cases=expected_cases) is settled


@pytest.mark.parametrize(
    ("progress", "seconds"),
    [
        (Progress(cases=400, audited=1_000, requested=1_200, sent=300, on_stream=4_000), 1.0),  # draining
        (Progress(cases=399, audited=4_000, requested=1_200, sent=1_200, on_stream=4_000), 1.0),  # a case to come
        (Progress(cases=400, audited=3_900, requested=1_200, sent=1_100, on_stream=4_000), 0.25),  # nearly done
        (Progress(cases=400, audited=4_000, requested=1_200, sent=1_200, on_stream=4_000), 0.25),  # settled
    ],
)
def test_the_bench_reads_its_counts_once_a_second_until_the_drain_is_nearly_done(
    progress: Progress, seconds: float
) -> None:
    # Each reading scans the ledger, the cases and the deliveries, and PostgreSQL's CPU counts as the system's.
    assert progress.next_reading_in(expected_cases=400) == seconds


def test_hot_spots_leave_out_waiting_and_show_self_and_inclusive_time_per_function() -> None:
    collapsed = [
        "main (services/audit/app.py:1);append (services/audit/store.py:5);execute (asyncpg/conn.py:9) 60",
        "main (services/audit/app.py:1);append (services/audit/store.py:7);write (asyncio/sel.py:3) 30",
        "main (services/audit/app.py:1);execute (asyncpg/conn.py:12) 10",
        "main (services/audit/app.py:1);EpollSelector.select (selectors.py:468) 100",
        "garbage line",
    ]
    assert hot_spots(collapsed, top=2) == {
        "samples": 200,
        "waiting_share": 0.5,
        "self": [
            {"frame": "execute (asyncpg/conn.py)", "share": 0.7},
            {"frame": "write (asyncio/sel.py)", "share": 0.3},
        ],
        "inclusive": [{"frame": "append (services/audit/store.py)", "share": 0.9}],
    }


def test_the_load_client_writes_a_content_length_post_and_reads_the_status_length_and_close() -> None:
    request = request_bytes(host="127.0.0.1:8080", path="/c", body=b"{}", headers={"Idempotency-Key": "bench-1"})
    assert request == (
        b"POST /c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\nIdempotency-Key: bench-1\r\n\r\n{}"
    )
    assert parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-length: 41\r\ncontent-type: application/json") == (
        202,
        41,
        False,
    )
    assert parse_head(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0") == (413, 0, True)


def test_the_markdown_summary_carries_every_section_of_a_report() -> None:
    report = complete_report()
    report["ratios"] = [
        {"figure": "concerns_per_second", "value": 10.0, "baseline": "b", "baseline_value": 1000.0, "ratio": 0.01}
    ]
    report["completeness"] = {"concerns": 10, "complete": 10}
    summary = markdown(report)
    assert "| concerns_per_second | 10.0 |" in summary
    assert "| 10.0 | - | to channel | 1.0 | 1.0 | 1.0 | 1.0 |" in summary
    assert "| audit | 1.0 | 90.0 |" in summary
    assert "| concerns_per_second | 10.0 | b | 1,000.0 | 0.0100 |" in summary
    assert summary.endswith("Completeness: 10 of 10 concerns complete.")


def test_a_service_that_exited_during_the_run_fails_the_bench_with_its_log() -> None:
    # Its CPU would otherwise read as nothing and quietly leave the totals.
    services = SimpleNamespace(dead=lambda: {"console": -9})
    system = SimpleNamespace(services=services, log_tail=lambda lines: "console | Killed")
    measurement = _Measurement(system, options=None, progress=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"console \(exit code -9\)[\s\S]*Killed"):
        measurement._no_service_died()
    services.dead = dict
    measurement._no_service_died()
