"""`safeguard bench` with tiny numbers against the machine's NATS and PostgreSQL: every figure, nothing lost."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest
from rich.console import Console

from services.bench.figures import missing_figures
from services.bench.run import BenchOptions, progress_bar, run_bench
from tests.conftest import TEST_DATABASE_SERVER, TEST_NATS_URL

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def console_default_port_taken() -> Iterator[None]:
    """Something else (`safeguard up`, another bench) holds the console's default port during the run."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8082))
        holder.listen()
    except OSError:
        pass  # already held by something else: the same situation
    try:
        yield
    finally:
        holder.close()


@pytest.mark.usefixtures("console_default_port_taken")
@pytest.mark.parametrize("push_device", [True, False], ids=["push-device", "no-push-device"])
def test_a_small_bench_run_reports_every_figure_and_every_concern_complete(push_device: bool) -> None:
    options = BenchOptions(
        concerns=20,
        concurrency=4,
        loads=(5.0,),
        load_seconds=2.0,
        baseline_seconds=0.3,
        warmup=2,
        drain_timeout=60.0,
        nats_url=TEST_NATS_URL,
        database_url=f"{TEST_DATABASE_SERVER.rstrip('/')}/postgres",
        push_device=push_device,
    )
    with progress_bar(Console(file=io.StringIO())) as progress:
        report = run_bench(options, progress=progress)

    assert missing_figures(report) == []
    assert report["servers"] == "configured" and report["server_figures_shared"] is True
    assert report["completeness"] == {"concerns": 32, "complete": 32, "all_complete": True, "incomplete": []}
    assert report["saturation"]["concerns"] == 20 and report["saturation"]["events"] >= 20 * 4
    assert report["latency"][0]["to_channel_ms"]["count"] == report["latency"][0]["concerns"] == 10
    assert all(figure > 0 for figure in report["baselines"].values())
    path = report["notification_path"]
    pushes = path["deliveries"].get("push sent", 0)
    if push_device:
        # Notifications trusted the run's CA (SSL_CERT_FILE) and every push reached the stand-in, none failed.
        assert path["devices"] >= 1 and pushes > 0 and path["pushes_received"] == pushes
        assert "push failed" not in path["deliveries"] and 1 <= path["push_connections"] <= pushes
    else:
        assert pushes == 0 and path["deliveries"]["push failed"] > 0 and path["pushes_received"] is None
