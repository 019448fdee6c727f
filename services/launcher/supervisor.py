"""The four services as child processes: start, prefix their logs, notice a death, restart, stop in order."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import services
from services.launcher.processes import die_with_parent, stop_process

# Consumers first so nothing intake publishes waits for a subscriber; stopped in the reverse order.
SERVICE_NAMES: tuple[str, ...] = ("audit", "routing", "notifications", "console", "intake")


def project_root() -> Path:
    """The folder holding the `services` package (the repository root in a checkout)."""
    return Path(next(iter(services.__path__))).resolve().parent


def service_command(name: str, *, python: str = sys.executable) -> list[str]:
    """The argv of one service process."""
    return [python, "-m", f"services.{name}"]


def service_environment(
    base: Mapping[str, str],
    *,
    nats_url: str,
    database_url: str,
    intake_port: int,
    notifications_port: int,
    data_dir: Path,
    signing_key: str,
) -> dict[str, str]:
    """The environment every service gets: the launcher's servers and ports over the caller's settings."""
    environment = dict(base)
    environment.update(
        {
            "SAFEGUARD_NATS_URL": nats_url,
            "SAFEGUARD_DATABASE_URL": database_url,
            "SAFEGUARD_INTAKE_HTTP_PORT": str(intake_port),
            "SAFEGUARD_NOTIFICATIONS_HTTP_PORT": str(notifications_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.setdefault("SAFEGUARD_MAIL_SINK_DIR", str(data_dir.absolute() / "mail"))
    # The audit signing key and witness log live in files, out of the database superuser's reach.
    environment.setdefault(
        "SAFEGUARD_AUDIT_SIGNING_KEY_PATH", str(data_dir.absolute() / "audit" / "head-signing-key.pem")
    )
    environment.setdefault("SAFEGUARD_AUDIT_WITNESS_LOG_PATH", str(data_dir.absolute() / "audit" / "witness.jsonl"))
    environment.setdefault("SAFEGUARD_AUDIT_KEK_PATH", str(data_dir.absolute() / "audit" / "key-encryption-key"))
    # A kept key keeps acknowledgement links sent before a restart working after it.
    environment.setdefault("SAFEGUARD_SIGNING_KEY", signing_key)
    environment.setdefault("SAFEGUARD_CONSOLE_URL", f"http://127.0.0.1:{notifications_port}")
    # `safeguard up` serves the console over plain http on loopback, where a browser drops Secure cookies.
    environment.setdefault("SAFEGUARD_CONSOLE_SECURE_COOKIES", "false")
    root = project_root()
    policies = root / "deploy" / "policies"
    if policies.is_dir():
        environment.setdefault("SAFEGUARD_POLICY_DIR", str(policies))
    paths = [str(root), *filter(None, environment.get("PYTHONPATH", "").split(":"))]
    environment["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    return environment


class ServiceGroup:
    """The service processes of one `safeguard up`."""

    def __init__(
        self,
        *,
        environment: Mapping[str, str],
        output: TextIO,
        names: tuple[str, ...] = SERVICE_NAMES,
        command_for: Callable[[str], list[str]] = service_command,
        own_environment: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.environment = dict(environment)
        # What only one service may see (its NATS identity, its database role).
        self.own_environment = {name: dict(extra) for name, extra in (own_environment or {}).items()}
        self.output = output
        self.names = names
        self.command_for = command_for
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._pumps: list[threading.Thread] = []
        self._output_lock = threading.Lock()

    def start(self) -> None:
        """Start every service."""
        for name in self.names:
            self._start_one(name)

    def restart(self, name: str) -> None:
        """Start `name` again after it exited (its old process is reaped)."""
        old = self.processes.get(name)
        if old is not None and old.poll() is None:
            stop_process(old, grace_seconds=10.0)
        self._start_one(name)

    def dead(self) -> dict[str, int]:
        """Every service whose process has exited, with its exit code."""
        return {name: code for name, process in self.processes.items() if (code := process.poll()) is not None}

    def _start_one(self, name: str) -> None:
        """Start one service in its own session, so a terminal's Ctrl-C reaches only the launcher."""
        process = subprocess.Popen(
            self.command_for(name),
            env={**self.environment, **self.own_environment.get(name, {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.processes[name] = process
        pump = threading.Thread(target=self._pump, args=(name, process), name=f"log-{name}", daemon=True)
        pump.start()
        self._pumps.append(pump)

    def exited(self) -> tuple[str, int] | None:
        """The first service found to have exited, with its exit code."""
        return next(iter(self.dead().items()), None)

    def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Stop services newest first (intake stops taking concerns before the others stop)."""
        for name in reversed(list(self.processes)):
            stop_process(self.processes[name], grace_seconds=grace_seconds)
        for pump in self._pumps:
            pump.join(timeout=2.0)

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Copy one service's output line by line, prefixed with its name."""
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._output_lock:
                self.output.write(f"{name:<13}| {line}\n")
                self.output.flush()
        process.stdout.close()


def http_ok(url: str, *, timeout: float = 1.0) -> bool:
    """Whether GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for(
    ready: Callable[[], bool], *, deadline_seconds: float, give_up: Callable[[], bool], interval: float = 0.2
) -> bool:
    """Poll `ready` until it holds, `give_up` holds, or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if ready():
            return True
        if give_up():
            return False
        time.sleep(interval)
    return False
