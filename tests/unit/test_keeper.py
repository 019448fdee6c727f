"""The launcher keeps the system up: restart with back-off, count restarts, stop only on a crash loop."""

from __future__ import annotations

import io
import os
import signal
import sys

from services.launcher import supervisor
from services.launcher.keeper import Keeper, RestartPolicy


class FakeServices:
    """Service processes that die when the test says so."""

    def __init__(self) -> None:
        self.exit_codes: dict[str, int] = {}
        self.started: list[str] = []

    def dead(self) -> dict[str, int]:
        return dict(self.exit_codes)

    def kill(self, name: str, *, code: int = -9) -> None:
        self.exit_codes[name] = code

    def restart(self, name: str) -> None:
        del self.exit_codes[name]
        self.started.append(name)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keeper(policy: RestartPolicy | None = None) -> tuple[Keeper, FakeServices, FakeClock, list[str]]:
    services, clock, said = FakeServices(), FakeClock(), list[str]()
    return Keeper(services, clock=clock, say=said.append, policy=policy), services, clock, said


def test_a_dead_service_is_restarted_after_a_short_delay_and_the_restart_is_logged_and_counted() -> None:
    keeper, services, clock, said = _keeper()
    services.kill("intake")
    assert keeper.step() is None
    assert services.started == []
    clock.now += 0.2
    assert keeper.step() is None
    assert services.started == ["intake"]
    assert keeper.restarts["intake"] == 1
    assert said == [
        "service intake exited with code -9; restarting it in 0.2s (1 recent crashes)",
        "service intake restarted (restart 1)",
    ]


def test_the_delay_doubles_with_each_recent_crash_up_to_a_ceiling() -> None:
    policy = RestartPolicy(first_delay_seconds=0.5, max_delay_seconds=3.0)
    assert [policy.delay(crashes) for crashes in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_five_crashes_within_a_minute_is_a_crash_loop_that_stops_the_system_with_a_clear_message() -> None:
    keeper, services, clock, _ = _keeper()
    for _ in range(4):
        services.kill("routing", code=1)
        keeper.step()
        clock.now += 10.0
        keeper.step()
    services.kill("routing", code=1)
    message = keeper.step()
    assert message is not None
    assert message.startswith("service routing crashed 5 times in 60s (last exit code 1); it is in a crash loop")
    assert keeper.restarts["routing"] == 4


def test_crashes_spread_over_more_than_the_window_never_stop_the_system() -> None:
    keeper, services, clock, _ = _keeper()
    for _ in range(12):
        services.kill("audit")
        assert keeper.step() is None
        clock.now += 16.0
        assert keeper.step() is None
    assert keeper.restarts["audit"] == 12


def test_each_service_has_its_own_crash_count() -> None:
    keeper, services, clock, _ = _keeper()
    for name in ("intake", "routing", "notifications", "audit", "intake"):
        services.kill(name)
        assert keeper.step() is None
        clock.now += 1.0
        keeper.step()
    assert sorted(services.started) == ["audit", "intake", "intake", "notifications", "routing"]


def test_a_killed_process_in_a_real_group_comes_back_with_its_own_environment() -> None:
    output = io.StringIO()
    script = "import os, time; print('up as', os.environ['SAFEGUARD_NATS_USER'], flush=True); time.sleep(60)"
    group = supervisor.ServiceGroup(
        environment=dict(os.environ),
        output=output,
        names=("intake", "routing"),
        command_for=lambda _: [sys.executable, "-c", script],
        own_environment={"intake": {"SAFEGUARD_NATS_USER": "intake"}, "routing": {"SAFEGUARD_NATS_USER": "routing"}},
    )
    group.start()
    try:
        assert supervisor.wait_for(
            lambda: output.getvalue().count("up as") == 2, deadline_seconds=10, give_up=lambda: False
        )
        first = group.processes["intake"].pid
        os.kill(first, signal.SIGKILL)
        assert supervisor.wait_for(lambda: "intake" in group.dead(), deadline_seconds=10, give_up=lambda: False)
        assert group.dead() == {"intake": -9}
        group.restart("intake")
        assert group.dead() == {}
        assert group.processes["intake"].pid != first
        came_back = lambda: output.getvalue().count("intake       | up as intake") == 2  # noqa: E731
        assert supervisor.wait_for(came_back, deadline_seconds=10, give_up=lambda: False)
    finally:
        group.stop(grace_seconds=5)
    assert "routing      | up as routing" in output.getvalue()
