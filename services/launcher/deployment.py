"""Credentials and first-start setup for containers and clusters (docker-compose.yml, deploy/k8s).

`python -m services.launcher.deployment secrets OUT` writes one folder per consumer, so each container
mounts only its own: `OUT/<service>/{nats.password,database.password}`, `OUT/nats/auth.conf`,
`OUT/postgres/superuser.password`, `OUT/setup/…` (what the setup job needs), and the actor-token issuers'
keys: `OUT/<issuer>/<issuer>.key` for the console and the operator, their `.pub` in `OUT/routing/` (which checks
both) and the console's in `OUT/notifications/` and `OUT/audit/`. Audit's folder also gets its head-signing key
and key-encryption key (0600, never in the database). Existing passwords and keys are kept.
`python -m services.launcher.deployment setup SECRETS` (the one-shot job): database roles, every schema
migrated as the owner, streams declared as the admin identity.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.audit.heads import load_or_create_signing_key
from services.audit.kek import load_or_create_kek
from services.console.commands import ISSUER as CONSOLE_ISSUER
from services.launcher.database_roles import role_passwords
from services.launcher.nats_auth import NatsAuth, declare_streams, prepare_nats_auth
from services.launcher.secret_files import persistent_secret, write_private
from shared.actor_tokens import load_or_create_issuer_key
from shared.db import ensure_database
from shared.db_roles import OWNER, SERVICE_SCHEMAS, ensure_roles, migrate_and_grant, role_url, service_role
from shared.identities import ADMIN, OPERATOR
from shared.settings import Settings
from shared.subjects import Subjects

# Who signs actor tokens routing believes: the staff console, and the operator's command line.
ISSUERS = (CONSOLE_ISSUER, OPERATOR)
# Who believes the console alone: notifications (push subscriptions) and audit (the auditor view).
CONSOLE_ONLY = ("notifications", "audit")
# Audit's keys, as named in its folder (and its Secret): a file name is a valid Secret key.
AUDIT_SIGNING_KEY = "head-signing-key.pem"
AUDIT_KEK = "key-encryption-key"


def _private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def write_deployment_secrets(out: Path, *, subjects: Subjects) -> None:
    """Generate (once) every password and the nats-server users, and lay them out one folder per consumer."""
    setup = _private_folder(out / "setup")
    database = role_passwords(setup)
    superuser = persistent_secret(setup / "superuser.password")
    # The postgres image reads this as its own user (not ours), in a folder only its container mounts.
    postgres = out / "postgres"
    postgres.mkdir(exist_ok=True)
    postgres.chmod(0o755)
    write_private(postgres / "superuser.password", superuser + "\n")
    (postgres / "superuser.password").chmod(0o644)
    auth = prepare_nats_auth(_private_folder(out / "nats"), subjects=subjects)
    write_private(setup / "admin.nats.password", auth.password(ADMIN) + "\n")
    for name in (*SERVICE_SCHEMAS, OPERATOR):
        folder = _private_folder(out / name)
        write_private(folder / "nats.password", auth.password(name) + "\n")
        if name in SERVICE_SCHEMAS:
            write_private(folder / "database.password", database[service_role(name)] + "\n")
    for issuer in ISSUERS:
        write_private(out / "routing" / f"{issuer}.pub", issuer_key(out / issuer, issuer=issuer))
    console_pub = (out / "routing" / f"{CONSOLE_ISSUER}.pub").read_text()
    for name in CONSOLE_ONLY:
        write_private(out / name / f"{CONSOLE_ISSUER}.pub", console_pub)
    # Made here once, not by audit on first start: a container's or pod's own disk does not outlive it.
    load_or_create_signing_key(out / "audit" / AUDIT_SIGNING_KEY)
    load_or_create_kek(out / "audit" / AUDIT_KEK)


def issuer_key(folder: Path, *, issuer: str) -> str:
    """Make (once) the issuer's private key in its own folder; its public key, for routing, as PEM."""
    key = load_or_create_issuer_key(folder, issuer=issuer)
    (folder / f"{issuer}.pub").unlink(missing_ok=True)  # routing's copy is the one that counts
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


async def set_up(settings: Settings, *, secrets: Path) -> None:
    """Roles, schemas migrated as the owner, grants, then the streams (run once per start, idempotent)."""
    await ensure_database(settings.database_url)
    passwords = role_passwords(secrets)
    await ensure_roles(settings.database_url, passwords=passwords)
    owner_url = role_url(settings.database_url, role=OWNER, password=passwords[OWNER])
    for service in SERVICE_SCHEMAS:
        await migrate_and_grant(owner_url, service=service)
    admin = NatsAuth(config_file=Path(), password_files={ADMIN: secrets / "admin.nats.password"})
    await declare_streams(settings.nats_url, auth=admin, settings=settings)


def main(argv: list[str] | None = None) -> None:
    """`secrets OUT` or `setup SECRETS`."""
    parser = argparse.ArgumentParser(prog="python -m services.launcher.deployment")
    parser.add_argument("step", choices=("secrets", "setup"))
    parser.add_argument("folder", type=Path)
    arguments = parser.parse_args(argv)
    settings = Settings()
    if arguments.step == "secrets":
        write_deployment_secrets(arguments.folder, subjects=Subjects.from_settings(settings))
    else:
        asyncio.run(set_up(settings, secrets=arguments.folder))


if __name__ == "__main__":
    main()
