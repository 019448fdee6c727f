"""The bench report as tables for a person (the JSON form is the report dict itself)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from services.bench.figures import LATENCY_FIGURES, PERCENTILES


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def tables(report: Mapping[str, Any]) -> list[Table]:
    """One table per section: saturation, latency, resources, baselines and ratios, completeness."""
    saturation = Table("saturation", "value", title="End to end at saturation")
    for key, value in report["saturation"].items():
        if key != "profiles":
            saturation.add_row(key, _number(value))

    latency = Table("offered/s", "achieved/s", "from intake's reply to", *(name for name, _ in PERCENTILES), "n")
    latency.title = "Latency at fixed offered loads (ms)"
    for step in report["latency"]:
        for figure in LATENCY_FIGURES:
            summary = step[figure]
            latency.add_row(
                _number(step["offered_per_second"]),
                _number(step["achieved_per_second"]),
                figure.removesuffix("_ms").replace("_", " "),
                *(_number(summary[name]) for name, _ in PERCENTILES),
                _number(summary["count"]),
            )

    resources = Table("process", "CPU ms / concern", "peak RSS MB", title="Resources during saturation")
    cpu, rss = report["cpu_ms_per_concern"], report["peak_rss_mb"]
    for name in dict.fromkeys([*cpu, *rss]):
        resources.add_row(name, _number(cpu.get(name)), _number(rss.get(name)))

    ratios = Table("pipeline figure", "value", "baseline", "value", "ratio", title="Beside the raw baselines")
    for row in report["ratios"]:
        ratios.add_row(
            row["figure"], _number(row["value"]), row["baseline"], _number(row["baseline_value"]), _number(row["ratio"])
        )

    completeness = report["completeness"]
    check = Table("concerns", "complete", "incomplete (first few)", title="Completeness")
    shown = "; ".join(f"{item['reference']}: {', '.join(item['problems'])}" for item in completeness["incomplete"][:5])
    check.add_row(_number(completeness["concerns"]), _number(completeness["complete"]), shown or "none")
    path = report.get("notification_path") or {}
    notified = Table("measured", "pushes received (connections)", "deliveries", title="Notification path")
    pushes = f"{_number(path.get('pushes_received'))} ({_number(path.get('push_connections'))})"
    notified.add_row(str(path.get("measured", "-")), pushes, _deliveries(path))
    return [notified, saturation, latency, resources, ratios, check]


def _deliveries(path: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {_number(n)}" for name, n in (path.get("deliveries") or {}).items()) or "-"


def path_line(report: Mapping[str, Any]) -> str:
    """One sentence: which notification path the run measured and what the stand-in push service received."""
    path = report.get("notification_path") or {}
    if not path:
        return "Notification path: not reported."
    line = f"Notification path: {path['measured']}; deliveries: {_deliveries(path)}"
    if path.get("push_device"):
        line += (
            f"; {_number(path.get('devices'))} devices, {_number(path.get('pushes_received'))} pushes received "
            f"over {_number(path.get('push_connections'))} connections"
        )
    return line + "."


def hot_spot_lines(report: Mapping[str, Any]) -> list[str]:
    """The profiled hot spots, one line per function, for docs/performance.md."""
    profiles = report["saturation"].get("profiles") or {}
    lines: list[str] = []
    for service, spots in profiles.items():
        waiting = spots.get("waiting_share") or 0.0
        lines.append(
            f"{service} ({spots.get('samples', 0)} samples, {waiting:.0%} of them waiting in epoll or on a lock)"
        )
        for kind, title in (("self", "self time, share of working samples"), ("inclusive", "our code, inclusive")):
            lines.append(f"  {title}:")
            lines.extend(f"    {spot['share']:6.1%}  {spot['frame']}" for spot in spots.get(kind, []))
    return lines


def markdown(report: Mapping[str, Any]) -> str:
    """A compact Markdown summary of one run, for docs/performance.md."""
    saturation, cpu, rss = report["saturation"], report["cpu_ms_per_concern"], report["peak_rss_mb"]
    lines = [
        f"Run finished {report.get('finished_at', '?')}, servers {report.get('servers', '?')}, "
        f"load average {report.get('machine', {}).get('load_average_1m', '?')} on "
        f"{report.get('machine', {}).get('cpus', '?')} CPUs.",
        path_line(report),
        "",
        "| saturation | value |",
        "|---|---|",
        *(f"| {key} | {_number(value)} |" for key, value in saturation.items() if key != "profiles"),
        "",
        "| offered/s | achieved/s | reply→ | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in report["latency"]:
        for figure in LATENCY_FIGURES:
            summary = step[figure]
            cells = " | ".join(_number(summary[name]) for name, _ in PERCENTILES)
            label = figure.removesuffix("_ms").replace("_", " ")
            rates = f"{_number(step['offered_per_second'])} | {_number(step.get('achieved_per_second'))}"
            lines.append(f"| {rates} | {label} | {cells} |")
    lines += ["", "| process | CPU ms/concern | peak RSS MB |", "|---|---|---|"]
    lines += [
        f"| {name} | {_number(cpu.get(name))} | {_number(rss.get(name))} |" for name in dict.fromkeys([*cpu, *rss])
    ]
    lines += ["", "| pipeline figure | value | baseline | value | ratio |", "|---|---|---|---|---|"]
    lines += [
        f"| {row['figure']} | {_number(row['value'])} | {row['baseline']} | {_number(row['baseline_value'])} "
        f"| {_number(row['ratio'])} |"
        for row in report["ratios"]
    ]
    completeness = report["completeness"]
    lines += ["", f"Completeness: {completeness['complete']} of {completeness['concerns']} concerns complete."]
    return "\n".join(lines)
