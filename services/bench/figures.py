"""Pure arithmetic of the bench: percentiles, rates, ratios to baselines, and the report's JSON shape."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REPORT_SCHEMA = "safeguard-bench/1"
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("max", 100.0))
BASELINE_NAMES: tuple[str, ...] = (
    "jetstream_publish_awaited_per_second",
    "jetstream_publish_async_per_second",
    "postgres_insert_commit_1_connection_per_second",
    "postgres_insert_commit_8_connections_per_second",
    "fastapi_post_per_second",
)
SERVICE_GROUPS: tuple[str, ...] = ("intake", "routing", "notifications", "audit", "nats-server", "postgres")


def percentile(values: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile (`rank` in 0..100) of `values`; a value that was really observed."""
    if not values:
        raise ValueError("no values")
    if not 0.0 <= rank <= 100.0:
        raise ValueError(f"rank must be within 0..100, got {rank}")
    ordered = sorted(values)
    position = max(1, math.ceil(rank / 100.0 * len(ordered)))
    return ordered[position - 1]


def summarise_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds and the count; None figures when nothing was measured."""
    summary: dict[str, float | int | None] = {"count": len(seconds)}
    for name, rank in PERCENTILES:
        summary[name] = round(percentile(seconds, rank) * 1000.0, 1) if seconds else None
    return summary


def rate(count: int, seconds: float) -> float | None:
    """`count` per second over `seconds`; None when no time passed."""
    return round(count / seconds, 1) if seconds > 0 else None


def per_concern_ms(cpu_seconds: Mapping[str, float], *, concerns: int) -> dict[str, float | None]:
    """CPU milliseconds per concern for each process group, plus their total."""
    figures: dict[str, float | None] = {
        name: (round(used * 1000.0 / concerns, 2) if concerns else None) for name, used in cpu_seconds.items()
    }
    measured = [value for value in figures.values() if value is not None]
    figures["total"] = round(sum(measured), 2) if measured else None
    return figures


@dataclass(frozen=True)
class Ratio:
    """One pipeline figure beside the baseline it is bounded by."""

    figure: str
    value: float | None
    baseline: str
    baseline_value: float | None

    @property
    def ratio(self) -> float | None:
        """figure / baseline, None when either is missing or the baseline is zero."""
        if self.value is None or not self.baseline_value:
            return None
        return round(self.value / self.baseline_value, 4)

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
        }


# Which raw operation bounds which pipeline figure: intake is an HTTP POST, every event is published once
# and audited once (one row each), and a concern needs at least one commit per service it passes through.
RATIO_PAIRS: tuple[tuple[str, str], ...] = (
    ("intake_accepts_per_second", "fastapi_post_per_second"),
    ("events_per_second", "jetstream_publish_awaited_per_second"),
    ("events_per_second", "jetstream_publish_async_per_second"),
    ("events_per_second", "postgres_insert_commit_1_connection_per_second"),
    ("concerns_per_second", "postgres_insert_commit_8_connections_per_second"),
)


def ratios(saturation: Mapping[str, Any], baselines: Mapping[str, float | None]) -> list[Ratio]:
    """The pipeline's saturation figures over the raw baselines measured in the same run."""
    return [
        Ratio(figure, saturation.get(figure), baseline, baselines.get(baseline)) for figure, baseline in RATIO_PAIRS
    ]


LATENCY_FIGURES: tuple[str, ...] = ("intake_reply_ms", "to_channel_ms", "to_audit_received_ms", "to_audit_last_ms")
SATURATION_FIGURES: tuple[str, ...] = (
    "concerns",
    "seconds",
    "concerns_per_second",
    "intake_accepts_per_second",
    "events",
    "events_per_second",
)


def missing_figures(report: Mapping[str, Any]) -> list[str]:
    """Dotted names of the figures a complete report must carry but this one lacks (or holds as null)."""
    missing: list[str] = []

    def need(container: Any, key: str, where: str) -> None:
        if not isinstance(container, Mapping) or container.get(key) is None:
            missing.append(f"{where}{key}")

    need(report, "schema", "")
    saturation = report.get("saturation")
    for key in SATURATION_FIGURES:
        need(saturation, key, "saturation.")
    steps = report.get("latency") or []
    if not steps:
        missing.append("latency")
    for index, step in enumerate(steps):
        need(step, "offered_per_second", f"latency[{index}].")
        for figure in LATENCY_FIGURES:
            for name, _rank in PERCENTILES:
                need(step.get(figure), name, f"latency[{index}].{figure}.")
    for group in SERVICE_GROUPS:
        need(report.get("cpu_ms_per_concern"), group, "cpu_ms_per_concern.")
        need(report.get("peak_rss_mb"), group, "peak_rss_mb.")
    for name in BASELINE_NAMES:
        need(report.get("baselines"), name, "baselines.")
    for index, row in enumerate(report.get("ratios") or []):
        need(row, "ratio", f"ratios[{index}].")
    need(report.get("completeness"), "complete", "completeness.")
    return missing
