"""Keeping the services up: a dead service is restarted with back-off; only a crash loop stops the system."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RestartPolicy:
    """How eagerly to restart, and when restarting has become pointless."""

    crash_loop_crashes: int = 5
    crash_loop_seconds: float = 60.0
    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 10.0

    def delay(self, recent_crashes: int) -> float:
        """Back-off before the restart that follows the `recent_crashes`-th crash in the window."""
        return min(self.max_delay_seconds, self.first_delay_seconds * 2 ** max(0, recent_crashes - 1))


@dataclass
class CrashHistory:
    """The crashes of each service within the policy's window (pure: the caller says what time it is)."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    crashes: dict[str, deque[float]] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)

    def record(self, name: str, *, at: float) -> int:
        """Note a crash of `name` at monotonic time `at`; how many crashes the window now holds."""
        window = self.crashes.setdefault(name, deque())
        window.append(at)
        while window and window[0] <= at - self.policy.crash_loop_seconds:
            window.popleft()
        return len(window)

    def in_crash_loop(self, recent_crashes: int) -> bool:
        return recent_crashes >= self.policy.crash_loop_crashes


class Services(Protocol):
    """What the keeper needs of a group of service processes."""

    def dead(self) -> dict[str, int]: ...

    def restart(self, name: str) -> None: ...


class Keeper:
    """Watches a group of services: schedules restarts, counts them, and says when to give up."""

    def __init__(
        self,
        services: Services,
        *,
        clock: Callable[[], float],
        say: Callable[[str], None],
        policy: RestartPolicy | None = None,
    ) -> None:
        self.services = services
        self.clock = clock
        self.say = say
        self.history = CrashHistory(policy or RestartPolicy())
        self.due: dict[str, float] = {}

    @property
    def restarts(self) -> Counter[str]:
        """How many times each service has been restarted."""
        return self.history.restarts

    def step(self) -> str | None:
        """One look at the services; a message when the system must stop (a crash loop), else None."""
        now = self.clock()
        for name, code in self.services.dead().items():
            if name in self.due:
                continue
            recent = self.history.record(name, at=now)
            policy = self.history.policy
            if self.history.in_crash_loop(recent):
                return (
                    f"service {name} crashed {recent} times in {policy.crash_loop_seconds:.0f}s "
                    f"(last exit code {code}); it is in a crash loop, so the system is stopping. "
                    f"Its log lines above say why."
                )
            delay = policy.delay(recent)
            self.say(f"service {name} exited with code {code}; restarting it in {delay:.1f}s ({recent} recent crashes)")
            self.due[name] = now + delay
        for name, due in list(self.due.items()):
            if now >= due:
                del self.due[name]
                self.services.restart(name)
                self.history.restarts[name] += 1
                self.say(f"service {name} restarted (restart {self.history.restarts[name]})")
        return None
