"""A private PostgreSQL cluster under the data folder, on loopback TCP only, run as an unprivileged user."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path

from services.launcher.ports import LOOPBACK, free_port
from services.launcher.postgres_binaries import (
    PostgresBinaries,
    candidate_bin_dirs,
    choose_binaries,
    cluster_major_version,
)
from services.launcher.privileges import (
    DEFAULT_POSTGRES_SYSTEM_USER,
    as_user,
    ensure_system_user,
    grant_traversal,
    hand_over,
    postgres_run_as,
)
from services.launcher.processes import tail

SUPERUSER = "postgres"


class PostgresStartError(RuntimeError):
    """The embedded PostgreSQL did not come up."""


def initdb_command(binaries: PostgresBinaries, *, pgdata: Path, password_file: Path) -> list[str]:
    """The argv creating a cluster whose only way in is a password over TCP."""
    return [
        binaries.initdb,
        "--pgdata",
        str(pgdata),
        "--username",
        SUPERUSER,
        "--pwfile",
        str(password_file),
        "--auth-host",
        "scram-sha-256",
        "--auth-local",
        "peer",
        "--encoding",
        "UTF8",
        "--no-locale",
    ]


def start_command(binaries: PostgresBinaries, *, pgdata: Path, log_file: Path, port: int) -> list[str]:
    """The argv starting the cluster on loopback `port` with no Unix socket, waiting until it is ready."""
    server_options = f"-p {port} -h {LOOPBACK} -k ''"
    return [
        binaries.pg_ctl,
        "start",
        "-D",
        str(pgdata),
        "-l",
        str(log_file),
        "-w",
        "-t",
        "60",
        "-o",
        server_options,
    ]


def stop_command(binaries: PostgresBinaries, *, pgdata: Path) -> list[str]:
    """The argv of a clean, fast shutdown: sessions are ended, the cluster checkpoints and stops."""
    return [binaries.pg_ctl, "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"]


def status_command(binaries: PostgresBinaries, *, pgdata: Path) -> list[str]:
    """The argv asking whether a server runs on the cluster (exit 0 when it does)."""
    return [binaries.pg_ctl, "status", "-D", str(pgdata)]


class EmbeddedPostgres:
    """One PostgreSQL cluster in `root/cluster`, its log in `root/server.log`."""

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        system_user: str = DEFAULT_POSTGRES_SYSTEM_USER,
        bin_dir: Path | None = None,
    ) -> None:
        self.root = root.absolute()
        self.pgdata = self.root / "cluster"
        self.log_file = self.root / "server.log"
        self.password_file = self.root / "superuser.password"
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.run_as = postgres_run_as(euid=os.geteuid(), system_user=system_user)
        self.notes: list[str] = []
        self._binaries: PostgresBinaries | None = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server."""
        password = self.password_file.read_text().strip()
        return f"postgresql+asyncpg://{SUPERUSER}:{password}@{LOOPBACK}:{self.port}/{database}"

    @property
    def binaries(self) -> PostgresBinaries:
        """The binaries chosen by `start`."""
        if self._binaries is None:
            raise PostgresStartError("the embedded PostgreSQL has not been started")
        return self._binaries

    def start(self) -> None:
        """Create the cluster on first use, stop a leftover server, then start it and wait until ready."""
        self._prepare_root()
        self._binaries = choose_binaries(
            candidate_bin_dirs(configured=self.bin_dir),
            run_as=self.run_as,
            cluster_major=cluster_major_version(self.pgdata),
        )
        if self._run(status_command(self.binaries, pgdata=self.pgdata), check=False) == 0:
            self.notes.append("stopped a PostgreSQL server left running on this data folder")
            self._run(stop_command(self.binaries, pgdata=self.pgdata))
        if cluster_major_version(self.pgdata) is None:
            self._initialise()
        self._run(start_command(self.binaries, pgdata=self.pgdata, log_file=self.log_file, port=self.port))

    def stop(self) -> None:
        """Stop the server cleanly (`pg_ctl stop -m fast`) if this object started it."""
        if self._binaries is not None:
            self._run(stop_command(self._binaries, pgdata=self.pgdata), check=False)
            self._binaries = None

    def _prepare_root(self) -> None:
        """Make `root` private to the user PostgreSQL runs as, creating that user when we are root."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self.run_as is None:
            return
        entry = ensure_system_user(self.run_as)
        opened = grant_traversal(self.root, entry=entry)
        if opened:
            listed = ", ".join(str(folder) for folder in opened)
            self.notes.append(f"let {self.run_as} pass through (search bit only): {listed}")
        if self.root.stat().st_uid != entry.pw_uid:
            hand_over(self.root, entry=entry)

    def _initialise(self) -> None:
        """Run initdb with a fresh random superuser password kept beside the cluster."""
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
            if self.run_as is not None:
                entry = ensure_system_user(self.run_as)
                os.chown(self.password_file, entry.pw_uid, entry.pw_gid)
        self._run(initdb_command(self.binaries, pgdata=self.pgdata, password_file=self.password_file))

    def _run(self, command: list[str], *, check: bool = True) -> int:
        """Run a PostgreSQL tool as the PostgreSQL user; on failure raise with its output and the log."""
        # Files, not pipes: the postmaster that `pg_ctl start` leaves behind must not hold our pipe open.
        with tempfile.TemporaryFile("w+") as output:
            completed = subprocess.run(
                as_user(command, user=self.run_as),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                text=True,
                timeout=120,
            )
            if check and completed.returncode != 0:
                output.seek(0)
                raise PostgresStartError(
                    f"{Path(command[0]).name} {command[1] if len(command) > 1 else ''} failed "
                    f"({completed.returncode}):\n{output.read()}\n{tail(self.log_file)}"
                )
        return completed.returncode
