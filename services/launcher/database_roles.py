"""`safeguard up`'s database setup: roles with generated passwords, schemas migrated as the owner, grants."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from services.launcher.secret_files import persistent_secret
from shared.db_roles import OWNER, SERVICE_SCHEMAS, ensure_roles, migrate_and_grant, role_url, service_role


def role_passwords(folder: Path) -> dict[str, str]:
    """Each role's password, generated on first use and kept in `folder` (0600 files in a 0700 folder)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    roles = (OWNER, *(service_role(service) for service in SERVICE_SCHEMAS))
    return {role: persistent_secret(folder / f"{role}.password") for role in roles}


def prepare_database_roles(admin_url: str, *, folder: Path) -> dict[str, dict[str, str]] | None:
    """Create the roles, migrate every schema as the owner and grant each service its own; each service's URL.

    None when `admin_url` may not create roles (a server run by someone else): services then use that URL.
    """
    passwords = role_passwords(folder)
    owner_url = role_url(admin_url, role=OWNER, password=passwords[OWNER])

    async def set_up() -> None:
        await ensure_roles(admin_url, passwords=passwords)
        for service in SERVICE_SCHEMAS:
            await migrate_and_grant(owner_url, service=service)

    try:
        asyncio.run(set_up())
    except asyncpg.InsufficientPrivilegeError:
        return None
    return {
        service: {"SAFEGUARD_DATABASE_URL": role_url(admin_url, role=role, password=passwords[role])}
        for service, role in ((service, service_role(service)) for service in SERVICE_SCHEMAS)
    }


def shown_database_url(database_url: str, *, per_service_roles: bool) -> str:
    """The database URL as the banner prints it: never with a password, without a user when each service has one."""
    url = make_url(database_url)
    if per_service_roles:
        # `URL.set` reads None as "unchanged", so build the URL without a user afresh.
        return URL.create(url.drivername, host=url.host, port=url.port, database=url.database).render_as_string()
    return url.render_as_string(hide_password=True)
