"""Each table is declared once, in its service's SQLAlchemy metadata; the migrations must build exactly that.

alembic's own comparison (the one autogenerate uses) runs against a schema migrated from scratch: any column,
type, nullability, unique constraint or index the code relies on but the migrations do not create (or the
other way round) fails here, so the two can never drift again.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.audit.store import SCHEMA as AUDIT
from services.audit.store import metadata as audit_metadata
from services.console.store import SCHEMA as CONSOLE
from services.console.store import metadata as console_metadata
from services.intake.store import SCHEMA as INTAKE
from services.intake.tables import metadata as intake_metadata  # the store's tables and the channels'
from services.notifications.store import SCHEMA as NOTIFICATIONS
from services.notifications.store import metadata as notifications_metadata
from services.notifications.subscriptions import push_subscriptions  # noqa: F401  (declared on that metadata)
from services.routing.store import SCHEMA as ROUTING
from services.routing.store import metadata as routing_metadata
from shared.db import make_engine
from shared.inbox_outbox import InboxOutbox
from shared.migrations import migrate
from shared.settings import Settings

SERVICES = {
    "audit": (AUDIT, audit_metadata),
    "console": (CONSOLE, console_metadata),
    "intake": (INTAKE, intake_metadata),
    "notifications": (NOTIFICATIONS, notifications_metadata),
    "routing": (ROUTING, routing_metadata),
}


def declared(schema: str, service_metadata: sa.MetaData) -> sa.MetaData:
    """Everything the service's code declares for its schema: its own tables plus the shared inbox and outbox."""
    combined = sa.MetaData(schema=schema)
    for table in service_metadata.tables.values():
        table.to_metadata(combined)
    tables = InboxOutbox(schema)
    for table in (tables.inbox, tables.outbox):
        table.to_metadata(combined)
    return combined


def differences(connection: sa.Connection, schema: str, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, parent: type_ != "schema" or name == schema,
            "compare_type": True,
            "compare_server_default": False,
            "version_table_schema": schema,
        },
    )
    return [diff for diff in compare_metadata(context, metadata) if not _is_version_table(diff)]


def _is_version_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version"


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_the_migrations_build_exactly_the_declared_tables(settings: Settings, service: str) -> None:
    schema, service_metadata = SERVICES[service]
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine, service=service, schema=schema)
        async with engine.connect() as connection:
            found = await connection.run_sync(differences, schema, declared(schema, service_metadata))
    finally:
        await engine.dispose()
    assert found == [], "\n".join(map(repr, found))
