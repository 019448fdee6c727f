"""The embedded nats-server's users: passwords kept under the data folder, a config rendered from the matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nats

from services.launcher.secret_files import persistent_secret, write_private
from shared.identities import ADMIN, SERVICE_NAMES, identities, render_server_config
from shared.messaging import ensure_streams
from shared.settings import Settings
from shared.subjects import Subjects


@dataclass(frozen=True)
class NatsAuth:
    """Where the server config and each identity's password file are."""

    config_file: Path
    password_files: dict[str, Path]

    def password(self, name: str) -> str:
        """The password of identity `name`."""
        return self.password_files[name].read_text().strip()

    def environment(self, name: str) -> dict[str, str]:
        """What a process running as identity `name` needs (a file path, so no password sits in its environment)."""
        return {"SAFEGUARD_NATS_USER": name, "SAFEGUARD_NATS_PASSWORD_FILE": str(self.password_files[name])}

    def service_environments(self) -> dict[str, dict[str, str]]:
        """Each service's own identity, for `ServiceGroup(own_environment=...)`."""
        return {service: self.environment(service) for service in SERVICE_NAMES}


def prepare_nats_auth(folder: Path, *, subjects: Subjects) -> NatsAuth:
    """Create each identity's password on first use (0600), and (re)write the server config from the matrix."""
    credentials = folder / "credentials"
    credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
    matrix = identities(subjects)
    password_files = {name: credentials / f"{name}.password" for name in matrix}
    passwords = {name: persistent_secret(path) for name, path in password_files.items()}
    config_file = folder / "auth.conf"
    write_private(config_file, render_server_config(matrix, passwords=passwords))
    return NatsAuth(config_file=config_file.absolute(), password_files=password_files)


async def declare_streams(url: str, *, auth: NatsAuth, settings: Settings) -> None:
    """Create or update the streams as the admin identity, before any service (which may not) starts."""
    client = await nats.connect(
        url, user=ADMIN, password=auth.password(ADMIN), connect_timeout=5, max_reconnect_attempts=3
    )
    try:
        await ensure_streams(client.jetstream(), settings)
    finally:
        await client.close()
