"""Optional sampling profiles of each service during saturation (py-spy), reduced to their hot spots."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from services.launcher.processes import die_with_parent

TOP = 12


# Frames where a thread waits rather than works (py-spy counts an event loop blocked in epoll as active).
WAITING = ("EpollSelector.select ", "Condition.wait ")
PROJECT_CODE = ("(services/", "(shared/")
ENTRY_POINTS = ("<module> ", "main ")  # on every stack of a service, so they say nothing


def _samples(collapsed: Iterable[str]) -> Iterable[tuple[list[str], int]]:
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def _function(frame: str) -> str:
    """`name (path/file.py:12)` -> `name (path/file.py)`: one entry per function, whatever the line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if where else name


def hot_spots(collapsed: Iterable[str], *, top: int = TOP) -> dict[str, object]:
    """From py-spy's collapsed stacks: the share spent waiting, the functions most often on top of the stack
    while working (self time), and our own functions most often anywhere on it (inclusive time)."""
    working: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = waiting = 0
    for frames, count in _samples(collapsed):
        total += count
        if frames[-1].startswith(WAITING):
            waiting += count
            continue
        working[_function(frames[-1])] += count
        for function in {
            _function(frame)
            for frame in frames
            if any(mark in frame for mark in PROJECT_CODE) and not frame.startswith(ENTRY_POINTS)
        }:
            ours[function] += count
    busy = max(1, total - waiting)
    return {
        "samples": total,
        "waiting_share": round(waiting / total, 3) if total else None,
        "self": [{"frame": frame, "share": round(n / busy, 3)} for frame, n in working.most_common(top)],
        "inclusive": [{"frame": frame, "share": round(n / busy, 3)} for frame, n in ours.most_common(top)],
    }


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


class Profiler:
    """Records every service with `py-spy record` while in use; does nothing without a folder or py-spy."""

    def __init__(self, folder: Path | None, *, pids: Mapping[str, int], rate: int = 100) -> None:
        self.folder = folder
        self.pids = dict(pids)
        self.rate = rate
        self.recorders: dict[str, subprocess.Popen[bytes]] = {}

    def output(self, name: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{name}.collapsed.txt"

    def __enter__(self) -> Profiler:
        binary = _py_spy()
        if self.folder is None or binary is None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            command = [binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--nolineno"]
            command += ["--output", str(self.output(name)), "--nonblocking"]
            self.recorders[name] = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent()
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        # py-spy writes its file when interrupted, as on Ctrl-C.
        for recorder in self.recorders.values():
            recorder.send_signal(signal.SIGINT)
        for recorder in self.recorders.values():
            try:
                recorder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()

    def hot_spots(self) -> dict[str, dict[str, object]] | None:
        """Hot spots per service, None when nothing was profiled."""
        if not self.recorders:
            return None
        return {
            name: hot_spots(self.output(name).read_text().splitlines() if self.output(name).is_file() else [])
            for name in self.recorders
        }
