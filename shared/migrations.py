"""Each service migrates its own schema with alembic at start, under an advisory lock.

A service keeps `services/<name>/migrations/` with an `env.py` that calls `run_env()` and a `versions/`
folder. Several instances starting at once serialise on a PostgreSQL advisory lock keyed by the schema.
"""

from __future__ import annotations

import zlib
from importlib.resources import files

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def json_as_text(table: str, column: str, *, schema: str) -> None:
    """Alembic operation keeping a JSONB column as JSON text instead, for a column nothing queries inside (every
    reader takes it whole and parses it in Python): no parse on insert, no re-serialising on read. A row kept
    before keeps its JSON, in JSONB's spelling (same document)."""
    op.alter_column(table, column, type_=sa.Text, postgresql_using=f"{column}::text", schema=schema)


def json_as_jsonb(table: str, column: str, *, schema: str) -> None:
    """The reverse of `json_as_text`."""
    op.alter_column(table, column, type_=JSONB, postgresql_using=f"{column}::jsonb", schema=schema)


def _config(service: str, schema: str, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files(f"services.{service}") / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


async def migrate(engine: AsyncEngine, *, service: str, schema: str, revision: str = "head") -> None:
    """Bring `schema` up to the newest revision of `service`'s migrations (or to `revision`, for tests)."""
    lock_key = zlib.crc32(f"safeguard-migrate:{schema}".encode())
    async with engine.begin() as connection:
        await connection.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": lock_key})
        # Checked first: a service's own role may not create schemas, but may confirm its schema is at head.
        exists = await connection.scalar(sa.text("select 1 from pg_namespace where nspname = :name"), {"name": schema})
        if not exists:
            await connection.execute(sa.text(f'create schema "{schema}"'))
        await connection.run_sync(lambda sync: command.upgrade(_config(service, schema, sync), revision))


def run_env() -> None:
    """Body of every service's alembic env.py: migrate on the connection `migrate` handed over."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through shared.migrations.migrate, which supplies a connection")
    schema = config.attributes["schema"]
    context.configure(connection=connection, version_table_schema=schema, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
