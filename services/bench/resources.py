"""CPU time and peak memory of each process group (a service, nats-server, the PostgreSQL cluster) via psutil."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping

import psutil

MEGABYTE = 1024 * 1024


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on TCP `port` (for servers the bench did not start)."""
    with contextlib.suppress(psutil.Error, OSError):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                return connection.pid
    return None


class ProcessGroup:
    """A process, with its descendants when asked (PostgreSQL forks a backend per connection)."""

    def __init__(self, name: str, pid: int, *, descendants: bool = False) -> None:
        self.name = name
        self.root = psutil.Process(pid)
        self.descendants = descendants

    def _members(self) -> Iterator[psutil.Process]:
        yield self.root
        if self.descendants:
            with contextlib.suppress(psutil.Error):
                yield from self.root.children(recursive=True)

    def cpu_seconds(self) -> float:
        """User + system CPU of the live members, plus what exited children left in the root's account."""
        total = 0.0
        for member in self._members():
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system
                if member is self.root and self.descendants:
                    # A backend that exited is reaped by the postmaster; its CPU shows up here.
                    total += times.children_user + times.children_system
        return total

    def rss_bytes(self) -> int:
        """Resident memory of the group: each member's private pages plus the largest shared part once.

        Forked PostgreSQL backends all map the same shared buffers; summing plain RSS would count them
        once per backend. For a single process this is exactly its RSS.
        """
        private = shared = 0
        for member in self._members():
            with contextlib.suppress(psutil.Error):
                memory = member.memory_info()
                private += memory.rss - memory.shared
                shared = max(shared, memory.shared)
        return private + shared


class ResourceMonitor:
    """Samples every group's RSS in a background thread (keeping the peak) and snapshots CPU on demand."""

    def __init__(self, groups: Mapping[str, ProcessGroup], *, interval: float = 0.25) -> None:
        self.groups = dict(groups)
        self.interval = interval
        self.peak_rss: dict[str, int] = dict.fromkeys(self.groups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)

    def __enter__(self) -> ResourceMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds used so far by each group."""
        return {name: group.cpu_seconds() for name, group in self.groups.items()}

    def peak_rss_mb(self) -> dict[str, float]:
        return {name: round(peak / MEGABYTE, 1) for name, peak in self.peak_rss.items()}

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for name, group in self.groups.items():
                self.peak_rss[name] = max(self.peak_rss[name], group.rss_bytes())


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots."""
    return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}
