"""Least-privilege PostgreSQL roles: an owner that migrates, and one login role per service on its own schema.

- `safeguard_owner` owns every service schema and runs the migrations; no service process holds it.
- `safeguard_<service>` may use its own schema only: DML on its tables, its sequences; no DDL, not the owner
  (so it cannot disable a trigger), no other schema. `SET session_replication_role` needs a superuser.
- Append-only tables (the audit ledger) are INSERT + SELECT only for their service.
- Never-updated tables (audit's data keys) are INSERT + SELECT + DELETE: a key is made, read, and destroyed
  (crypto-shredding), never rewritten.
- `safeguard_console_request` (NOLOGIN) is what the console `SET ROLE`s to for a signed-in person's queries,
  under row-level security by school; its migration grants it its tables and creates the policies.
Default privileges grant tables a later migration creates; `apply_grants` runs after every migration anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import asyncpg
from sqlalchemy.engine import make_url

from shared.db import asyncpg_dsn, make_engine
from shared.migrations import migrate

OWNER = "safeguard_owner"
SERVICE_SCHEMAS: dict[str, str] = {
    "intake": "intake",
    "routing": "routing",
    "notifications": "notifications",
    "audit": "audit",
    "console": "console",
}
# NOLOGIN roles a service switches to (`SET ROLE`) so row-level security applies to a request's queries; the
# service's login role is made a member. Created here, with CREATEROLE, because the owner that migrates has none.
REQUEST_ROLES: dict[str, str] = {"console": "safeguard_console_request"}
_NO_PRIVILEGES = "nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls"
# Tables whose rows, once written, no service may change or remove.
APPEND_ONLY: dict[str, tuple[str, ...]] = {"audit": ("ledger",)}
# Tables whose rows a service may remove but never change.
NEVER_UPDATED: dict[str, tuple[str, ...]] = {"audit": ("data_keys",)}


def service_role(service: str) -> str:
    """The login role service `service` connects as."""
    return f"safeguard_{service}"


def quoted(identifier: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def role_url(database_url: str, *, role: str, password: str) -> str:
    """`database_url` with its user and password replaced by `role`'s."""
    return make_url(database_url).set(username=role, password=password).render_as_string(hide_password=False)


def database_statements(database: str) -> list[str]:
    """Who may connect and create: the owner creates schemas; nobody else creates anything, even temp tables."""
    db = quoted(database)
    services = ", ".join(quoted(service_role(service)) for service in SERVICE_SCHEMAS)
    return [
        f"revoke create, temporary on database {db} from public",
        f"grant connect, create on database {db} to {quoted(OWNER)}",
        f"grant connect on database {db} to {services}",
        "revoke create on schema public from public",
    ]


def grant_statements(service: str, *, schema: str | None = None) -> list[str]:
    """What `service`'s role may do in its own schema (run as the owner, after migrations)."""
    role, owner, name = quoted(service_role(service)), quoted(OWNER), quoted(schema or SERVICE_SCHEMAS[service])
    statements = [
        f"revoke all on schema {name} from public",
        f"grant usage on schema {name} to {role}",
        f"grant select, insert, update, delete on all tables in schema {name} to {role}",
        f"grant usage, select on all sequences in schema {name} to {role}",
        f"alter default privileges for role {owner} in schema {name} "
        f"grant select, insert, update, delete on tables to {role}",
        f"alter default privileges for role {owner} in schema {name} grant usage, select on sequences to {role}",
    ]
    for table in APPEND_ONLY.get(service, ()):
        statements.append(f"revoke update, delete, truncate on {name}.{quoted(table)} from {role}")
    for table in NEVER_UPDATED.get(service, ()):
        statements.append(f"revoke update, truncate on {name}.{quoted(table)} from {role}")
    return statements


async def ensure_roles(admin_url: str, *, passwords: Mapping[str, str]) -> None:
    """Create (or update the password of) the owner and each service role; idempotent. Needs CREATEROLE."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        for role in (OWNER, *(service_role(service) for service in SERVICE_SCHEMAS)):
            # Literal, not a parameter: utility statements take no bind parameters; the password is generated.
            password = passwords[role].replace(chr(39), chr(39) * 2)
            await _create_or_alter(connection, role, f"login {_NO_PRIVILEGES} password '{password}'")
        for service, request_role in REQUEST_ROLES.items():
            await _create_or_alter(connection, request_role, f"nologin {_NO_PRIVILEGES}")
            await connection.execute(f"grant {quoted(request_role)} to {quoted(service_role(service))}")
        database = make_url(admin_url).database
        assert database is not None
        for statement in database_statements(database):
            await connection.execute(statement)
        for schema in SERVICE_SCHEMAS.values():
            await _adopt_schema(connection, schema)
    finally:
        await connection.close()


async def _create_or_alter(connection: asyncpg.Connection, role: str, options: str) -> None:
    """Create `role` with `options`, or bring an existing one to them."""
    if not await connection.fetchval("select 1 from pg_roles where rolname = $1", role):
        # Roles are cluster-wide: another database's setup may create the same role at the same moment.
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await connection.execute(f"create role {quoted(role)} {options}")
            return
    await connection.execute(f"alter role {quoted(role)} {options}")


async def _adopt_schema(connection: asyncpg.Connection, schema: str) -> None:
    """Hand a schema migrated before roles existed (by the superuser) and its objects to the owner."""
    if not await connection.fetchval("select 1 from pg_namespace where nspname = $1", schema):
        return
    await connection.execute(f"alter schema {quoted(schema)} owner to {quoted(OWNER)}")
    # ALTER TABLE also hands over the sequences its identity columns own.
    objects = await connection.fetch(
        "select 'table ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) as target"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm')"
        " union all select 'function ' || p.oid::regprocedure::text"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1",
        schema,
    )
    for row in objects:
        await connection.execute(f"alter {row['target']} owner to {quoted(OWNER)}")


async def apply_grants(owner_url: str, *, service: str, schema: str | None = None) -> None:
    """Give `service`'s role its rights on its schema (as the owner, after its migrations ran)."""
    connection = await asyncpg.connect(asyncpg_dsn(owner_url))
    try:
        async with connection.transaction():
            for statement in grant_statements(service, schema=schema):
                await connection.execute(statement)
    finally:
        await connection.close()


async def migrate_and_grant(owner_url: str, *, service: str, schema: str | None = None) -> None:
    """Bring `service`'s schema to its newest revision as the owner, then re-apply its role's rights."""
    name = schema or SERVICE_SCHEMAS[service]
    engine = make_engine(owner_url, pool_size=1)
    try:
        await migrate(engine, service=service, schema=name)
    finally:
        await engine.dispose()
    await apply_grants(owner_url, service=service, schema=name)
