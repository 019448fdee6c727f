"""How fast routing decides: `decide` throughput, and `route` latency including process start.

Run from the repository root:  .venv/bin/python bench/bench_routing.py
Each figure is printed next to a baseline measured in the same run on the same machine, so the ratio means
something even on a busy or slow machine: a bare loop of dict lookups for `decide`, and `python -c pass`
for the command's latency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.routing.policy import decide, load_policy  # noqa: E402
from shared.contracts.concern import ConcernReceivedPayload  # noqa: E402

POLICY = REPO / "deploy" / "policies" / "st-marks.yaml"
SCENARIOS = REPO / "tests" / "routing" / "scenarios"
DECIDE_TARGET = 20_000  # decisions per second
ROUTE_TARGET_MS = 250.0


def verdict(ms: float) -> str:
    """Whether a latency meets the target, in words."""
    return f"{'meets' if ms < ROUTE_TARGET_MS else 'misses'} the {ROUTE_TARGET_MS:.0f} ms target"


def scenario_concerns() -> list[ConcernReceivedPayload]:
    """The concerns of the St Mark's scenario tables: a realistic mix of kinds, people and flags."""
    concerns = []
    for table in sorted(SCENARIOS.glob("*.yaml")):
        data = yaml.safe_load(table.read_text(encoding="utf-8"))
        for number, case in enumerate(data["cases"], start=1):
            body = {
                "summary": "benchmark concern",
                "reference": f"BENCH-{table.stem[:2]}-{number:03d}",
                "channel": "web_form",
                "raw_input_id": "raw",
                "received_at": case.get("received_at", data["received_at"]),
                **case["concern"],
            }
            concerns.append(ConcernReceivedPayload.model_validate(body))
    return concerns


def decide_throughput(seconds: float) -> tuple[float, float]:
    """Decisions per second over the scenario mix, and dict lookups per second in the same kind of loop."""
    policy = load_policy(POLICY)
    concerns = scenario_concerns()
    for concern in concerns:  # warm the engine's per-policy indexes
        decide(concern, policy)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(20):
            for concern in concerns:
                decide(concern, policy)
        best = max(best, 20 * len(concerns) / (time.perf_counter() - started))
    table = {concern.reference: concern for concern in concerns}
    keys = list(table) * 20
    lookup_best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        for key in keys:
            table.get(key)
        lookup_best = max(lookup_best, len(keys) / (time.perf_counter() - started))
    return best, lookup_best


def median_ms(
    command: list[str], *, stdin: bytes, runs: int, env: dict[str, str], before: Callable[[], object] | None = None
) -> tuple[float, float]:
    """Median and slowest wall time of `runs` runs of `command`, in milliseconds; `before` runs before each."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        done = subprocess.run(command, input=stdin, capture_output=True, cwd=REPO, env=env, check=False)
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    return statistics.median(times), max(times)


def main() -> None:
    """Measure and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to measure decide for")
    parser.add_argument("--runs", type=int, default=15, help="process runs per latency figure")
    options = parser.parse_args()

    per_second, lookups = decide_throughput(options.seconds)
    print(f"decide: {per_second:,.0f} decisions/s (target >= {DECIDE_TARGET:,}) — {1e6 / per_second:.1f} µs each")
    print(f"  baseline, bare dict-lookup loop: {lookups:,.0f}/s; one decision costs {lookups / per_second:.0f} lookups")

    concern = scenario_concerns()[0].model_dump_json().encode()
    python = sys.executable
    scratch = Path(tempfile.mkdtemp(prefix="safeguard-bench-"))
    cache = scratch / "cache"
    # Timed as installed (pip compiles bytecode as it installs), not as a checkout run with PYTHONDONTWRITEBYTECODE
    # set, where every run compiles safeguard's sources again: bytecode goes to a folder of the bench's own.
    env = {**os.environ, "SAFEGUARD_CACHE_DIR": str(cache), "PYTHONPYCACHEPREFIX": str(scratch / "bytecode")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    route = [python, "-m", "services.routing.cli", "route", "--policy", str(POLICY)]
    median_ms(route, stdin=concern, runs=1, env=env)  # first run compiles bytecode and fills the caches
    start_ms, _ = median_ms([python, "-c", "pass"], stdin=b"", runs=options.runs, env=env)
    route_ms, route_worst = median_ms(route, stdin=concern, runs=options.runs, env=env)
    print(
        f"python -m services.routing.cli route (one decision): median {route_ms:.0f} ms, slowest {route_worst:.0f} ms"
        f" — {verdict(route_ms)}"
    )
    print(f"  baseline, python -c pass: {start_ms:.0f} ms; ratio {route_ms / start_ms:.1f}x")
    safeguard = shutil.which("safeguard", path=str(Path(python).parent))
    if safeguard:
        command = [safeguard, "route", "--policy", str(POLICY)]
        median_ms(command, stdin=concern, runs=1, env=env)
        ms, worst = median_ms(command, stdin=concern, runs=options.runs, env=env)
        print(
            f"safeguard route (one decision): median {ms:.0f} ms, slowest {worst:.0f} ms; ratio {ms / start_ms:.1f}x"
            f" — {verdict(ms)}"
        )
        # The validated policy is kept between runs; this is what a run costs when the policy file has changed.
        forget = partial(shutil.rmtree, cache / "policies", ignore_errors=True)
        ms, worst = median_ms(command, stdin=concern, runs=options.runs, env=env, before=forget)
        print(
            f"  first run after the policy file changes (validated afresh): median {ms:.0f} ms, slowest {worst:.0f} ms"
        )
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            as_here = {**os.environ, "SAFEGUARD_CACHE_DIR": str(cache)}
            ms, worst = median_ms(command, stdin=concern, runs=options.runs, env=as_here)
            print(
                f"  as this environment runs the checkout (PYTHONDONTWRITEBYTECODE: sources compiled on every run):"
                f" median {ms:.0f} ms, slowest {worst:.0f} ms"
            )
    print("  where process start goes (median of imports alone):")
    for label, statement in (
        ("typer", "import typer"),
        ("pydantic", "import pydantic"),
        ("shared.contracts.concern (runs shared/contracts/__init__)", "import shared.contracts.concern"),
        ("services.routing.policy (engine + the above)", "import services.routing.policy"),
        ("yaml (not imported by route once the policy is kept)", "import yaml"),
        ("holidays (not imported by route once its cache is warm)", "import holidays"),
    ):
        ms, _ = median_ms([python, "-c", statement], stdin=b"", runs=max(3, options.runs // 3), env=env)
        print(f"    {label}: {ms:.0f} ms")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
