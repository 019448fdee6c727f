"""As each service's own database role: its normal work succeeds; DDL, trigger and ledger tampering, and
reading another service's schema fail (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from shared.db import asyncpg_dsn, make_engine
from shared.db_roles import OWNER, SERVICE_SCHEMAS, ensure_roles, migrate_and_grant, role_url, service_role
from shared.migrations import migrate
from shared.settings import Settings

SERVICES = tuple(SERVICE_SCHEMAS)
Connect = Callable[[str], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def urls(settings: Settings) -> dict[str, str]:
    """Roles created, every schema migrated as the owner and granted; the URL each role connects with."""
    passwords = {role: uuid.uuid4().hex for role in (OWNER, *map(service_role, SERVICES))}
    await ensure_roles(settings.database_url, passwords=passwords)
    found = {role: role_url(settings.database_url, role=role, password=passwords[role]) for role in passwords}
    for service in SERVICES:
        await migrate_and_grant(found[OWNER], service=service)
    return found


@pytest.fixture
async def connect(urls: dict[str, str]) -> AsyncIterator[Connect]:
    """Open a connection as a role; all are closed after the test."""
    opened: list[asyncpg.Connection] = []

    async def as_role(role: str) -> asyncpg.Connection:
        connection = await asyncpg.connect(asyncpg_dsn(urls[role]))
        opened.append(connection)
        return connection

    yield as_role
    for connection in opened:
        await connection.close()


async def _refused(connection: asyncpg.Connection, statement: str) -> str:
    """Run `statement`, expecting PostgreSQL to refuse it for lack of privilege; the refusal's message."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refusal:
        await connection.execute(statement)
    return str(refusal.value)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_can_do_no_ddl(connect: Connect, service: str) -> None:
    connection = await connect(service_role(service))
    schema = SERVICE_SCHEMAS[service]
    for statement in (
        f"create table {schema}.smuggled (id int)",
        "create table public.smuggled (id int)",
        "create temporary table smuggled (id int)",
        "create schema smuggled",
        f"alter table {schema}.inbox add column smuggled text",
        f"drop table {schema}.outbox",
        f"create index smuggled on {schema}.inbox (processed_at)",
    ):
        await _refused(connection, statement)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_cannot_switch_triggers_or_replication_role_off(connect: Connect, service: str) -> None:
    connection = await connect(service_role(service))
    await _refused(connection, "set session_replication_role = replica")
    await _refused(connection, "set local session_replication_role = replica")
    await _refused(connection, f"alter table {SERVICE_SCHEMAS[service]}.inbox disable trigger all")


async def test_the_audit_role_can_append_and_read_the_ledger_and_nothing_more(connect: Connect) -> None:
    audit = await connect(service_role("audit"))
    await audit.execute(
        "insert into audit.ledger (school_id, school_sequence, event_id, event_type, aggregate_id, correlation_id,"
        " occurred_at, entry, previous_hash, entry_hash)"
        " values ('st-marks', 1, $1, 'concern.received', 'c-1', $1, now(), '\\x7b7d', 'genesis', 'h1')",
        uuid.uuid4(),
    )
    assert await audit.fetchval("select count(*) from audit.ledger") == 1
    for statement in (
        "update audit.ledger set entry_hash = 'forged'",
        "delete from audit.ledger",
        "truncate audit.ledger",
        "alter table audit.ledger disable trigger ledger_no_update",
        "drop trigger ledger_no_update on audit.ledger",
        "select setval(pg_get_serial_sequence('audit.ledger', 'position'), 1)",
        # the view for ad-hoc SQL runs as its reader (security_invoker), so it opens no way round
        "update audit.ledger_events set event_type = 'forged'",
        "delete from audit.ledger_events",
    ):
        message = await _refused(audit, statement)
        # Refused by the privilege system, before the append-only trigger even runs.
        assert "append-only" not in message
    assert await audit.fetchval("select entry_hash from audit.ledger") == "h1"


async def test_the_audit_role_makes_reads_and_destroys_data_keys_but_never_rewrites_one(connect: Connect) -> None:
    audit = await connect(service_role("audit"))
    insert = (
        "insert into audit.data_keys (school_id, key_id, wrapped, wrapped_by) values ('st-marks', $1, $2, 'school')"
    )
    await audit.execute(insert, "person:p-1", b"wrapped-1")
    await audit.execute(insert, "person:p-2", b"wrapped-2")
    assert await audit.fetchval("select count(*) from audit.data_keys") == 2
    for statement in (
        "update audit.data_keys set wrapped = 'swapped'",  # a key swapped for another would unseal the wrong data
        "truncate audit.data_keys",
        "alter table audit.data_keys add column smuggled text",
    ):
        await _refused(audit, statement)
    assert await audit.execute("delete from audit.data_keys where key_id = 'person:p-1'") == "DELETE 1"  # shredding
    assert await audit.fetchval("select wrapped from audit.data_keys") == b"wrapped-2"
    await _refused(audit, "delete from audit.ledger")  # the record itself still only grows


@pytest.mark.parametrize(("reader", "owner"), [(a, b) for a in SERVICES for b in SERVICES if a != b])
async def test_no_service_can_read_another_services_schema(connect: Connect, reader: str, owner: str) -> None:
    connection = await connect(service_role(reader))
    await _refused(connection, f"select count(*) from {SERVICE_SCHEMAS[owner]}.outbox")
    await _refused(
        connection, f"insert into {SERVICE_SCHEMAS[owner]}.inbox (consumer, event_id) values ('x', gen_random_uuid())"
    )


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_role_does_its_normal_work(connect: Connect, service: str) -> None:
    connection = await connect(service_role(service))
    schema = SERVICE_SCHEMAS[service]
    event_id = uuid.uuid4()
    async with connection.transaction():
        await connection.execute(f"insert into {schema}.inbox (consumer, event_id) values ('c', $1)", event_id)
        position = await connection.fetchval(
            f"insert into {schema}.outbox (event_id, subject_school, event_type, body)"
            " values ($1, 'st-marks', 'x.y', '{}') returning position",
            event_id,
        )
        locked = await connection.fetchval(
            f"select position from {schema}.outbox where published_at is null for update skip locked"
        )
        await connection.execute(f"update {schema}.outbox set published_at = now() where position = $1", position)
        await connection.execute(f"delete from {schema}.inbox where event_id = $1", event_id)
    assert locked == position
    assert await connection.fetchval(f"select count(*) from {schema}.outbox where published_at is not null") == 1


async def test_a_service_starting_as_its_role_finds_its_schema_at_head(urls: dict[str, str]) -> None:
    for service in SERVICES:
        engine = make_engine(urls[service_role(service)], pool_size=1)
        try:
            await migrate(engine, service=service, schema=SERVICE_SCHEMAS[service])
        finally:
            await engine.dispose()


async def test_tables_a_later_migration_adds_are_granted_and_setup_is_idempotent(
    settings: Settings, urls: dict[str, str], connect: Connect
) -> None:
    owner = await connect(OWNER)
    await owner.execute("create table intake.added_later (id int)")
    intake = await connect(service_role("intake"))
    await intake.execute("insert into intake.added_later values (1)")
    passwords = {role: asyncpg_dsn(url).rsplit("@", 1)[0].rsplit(":", 1)[1] for role, url in urls.items()}
    await ensure_roles(settings.database_url, passwords=passwords)
    await migrate_and_grant(urls[OWNER], service="audit")
    audit = await connect(service_role("audit"))
    await _refused(audit, "delete from audit.ledger")


async def test_schemas_migrated_by_the_superuser_before_roles_existed_are_handed_to_the_owner(
    settings: Settings,
) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        for service in SERVICES:
            await migrate(engine, service=service, schema=SERVICE_SCHEMAS[service])
    finally:
        await engine.dispose()
    passwords = {role: uuid.uuid4().hex for role in (OWNER, *map(service_role, SERVICES))}
    await ensure_roles(settings.database_url, passwords=passwords)
    owner_url = role_url(settings.database_url, role=OWNER, password=passwords[OWNER])
    for service in SERVICES:
        await migrate_and_grant(owner_url, service=service)
    admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        owners = await admin.fetch(
            "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace where n.nspname = any($1::text[])",
            list(SERVICE_SCHEMAS.values()),
        )
    finally:
        await admin.close()
    assert [row["owner"] for row in owners] == [OWNER]
    audit = await asyncpg.connect(
        asyncpg_dsn(role_url(settings.database_url, role="safeguard_audit", password=passwords["safeguard_audit"]))
    )
    try:
        await _refused(audit, "alter table audit.ledger disable trigger ledger_no_update")
        assert await audit.fetchval("select count(*) from audit.ledger") == 0
    finally:
        await audit.close()


async def test_the_console_role_works_across_schools_and_its_request_role_sees_only_the_persons_schools(
    connect: Connect,
) -> None:
    console = await connect(service_role("console"))
    run = uuid.uuid4().hex
    for school in ("st-marks", "oak-academy"):
        # Unscoped, as the read model writes: every school's rows.
        await console.execute(
            "insert into console.concerns (event_id, school_id, reference, body) values ($1, $2, 'r', '{}')",
            f"{run}-{school}",
            school,
        )

    async def as_request(statement: str, *arguments: object) -> list[asyncpg.Record]:
        async with console.transaction():
            await console.execute("set local role safeguard_console_request")
            await console.execute("select set_config('app.school_ids', 'st-marks', true)")
            return await console.fetch(statement, *arguments)

    seen = await as_request("select school_id from console.concerns where event_id like $1", f"{run}-%")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await as_request(
            "insert into console.concerns (event_id, school_id, reference, body) values ($1, 'oak-academy', 'r', '{}')",
            f"{run}-smuggled",
        )
    assert [row["school_id"] for row in seen] == ["st-marks"]
    await _refused(console, "set role safeguard_owner")
