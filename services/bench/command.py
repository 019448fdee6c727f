"""The `safeguard bench` command: options, then the run, then tables or JSON; non-zero when anything is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer


def bench(
    concerns: Annotated[int, typer.Option(min=1, help="Concerns posted in the saturation phase.")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent HTTP clients at saturation.")] = 32,
    load: Annotated[
        list[float] | None, typer.Option(help="An offered load in concerns/s for a latency step (repeatable).")
    ] = None,
    load_seconds: Annotated[float, typer.Option(min=0.5, help="Seconds each latency step lasts.")] = 12.0,
    baseline_seconds: Annotated[float, typer.Option(min=0.2, help="Seconds each raw baseline lasts.")] = 2.0,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline to drain.")] = 600.0,
    profile: Annotated[
        Path | None, typer.Option(help="Record each service with py-spy during saturation into this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown summary (for docs/performance.md).")
    ] = False,
    routing: Annotated[bool, typer.Option("--routing", help="Run bench/bench_routing.py instead.")] = False,
    no_push_device: Annotated[
        bool,
        typer.Option(
            "--no-push-device",
            help="Subscribe no push device: every push fails (no subscription), as measured before this option.",
        ),
    ] = False,
) -> None:
    """Measure the whole system (its own NATS and PostgreSQL unless SAFEGUARD_*_URL name servers)."""
    if routing:
        from services.launcher.supervisor import project_root

        raise typer.Exit(subprocess.call([sys.executable, str(project_root() / "bench" / "bench_routing.py")]))
    from rich.console import Console

    from services.bench.report import hot_spot_lines, markdown, tables
    from services.bench.run import BenchOptions, progress_bar, run_bench

    options = BenchOptions(
        concerns=concerns,
        concurrency=concurrency,
        loads=tuple(load) if load else BenchOptions.loads,
        load_seconds=load_seconds,
        baseline_seconds=baseline_seconds,
        drain_timeout=drain_timeout,
        nats_url=os.environ.get("SAFEGUARD_NATS_URL") or None,
        database_url=os.environ.get("SAFEGUARD_DATABASE_URL") or None,
        profile_dir=profile.absolute() if profile else None,
        push_device=not no_push_device,
    )
    errors = Console(stderr=True)
    with progress_bar(errors) as progress:
        report = run_bench(options, progress=progress)
    if as_json:
        print(json.dumps(report, indent=2))
    elif as_markdown:
        print(markdown(report))
        print("\n".join(hot_spot_lines(report)))
    else:
        out = Console()
        for table in tables(report):
            out.print(table)
        for line in hot_spot_lines(report):
            out.print(line, markup=False, highlight=False)
    if not report["completeness"]["all_complete"]:
        errors.print(f"[red]incomplete concerns: {len(report['completeness']['incomplete'])} shown[/red]")
        raise typer.Exit(1)
