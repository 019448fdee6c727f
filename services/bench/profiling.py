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


def hot_spots(collapsed: Iterable[str], *, top: int = TOP) -> list[dict[str, object]]:
    """The frames most often on top of the stack (self time) in py-spy's collapsed output, with their share."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaves[stack.rsplit(";", 1)[-1]] += int(count)
        total += int(count)
    return [
        {"frame": frame, "samples": samples, "share": round(samples / total, 3)}
        for frame, samples in leaves.most_common(top)
    ]


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
            command = [binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw"]
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

    def hot_spots(self) -> dict[str, list[dict[str, object]]] | None:
        """Top self-time frames per service, None when nothing was profiled."""
        if not self.recorders:
            return None
        found: dict[str, list[dict[str, object]]] = {}
        for name in self.recorders:
            path = self.output(name)
            found[name] = hot_spots(path.read_text().splitlines()) if path.is_file() else []
        return found
