"""Database roles as statements: each service on its own schema, the ledger append-only, no password shown."""

from __future__ import annotations

from services.launcher.database_roles import shown_database_url
from shared.db_roles import database_statements, grant_statements, role_url


def test_a_service_gets_dml_on_its_own_schema_and_on_tables_later_migrations_add() -> None:
    statements = grant_statements("intake")
    assert 'grant usage on schema "intake" to "safeguard_intake"' in statements
    assert 'grant select, insert, update, delete on all tables in schema "intake" to "safeguard_intake"' in statements
    assert any(
        s.startswith('alter default privileges for role "safeguard_owner" in schema "intake"') for s in statements
    )
    assert not any("revoke update" in statement for statement in statements)


def test_the_audit_role_may_only_append_to_and_read_the_ledger_and_never_rewrites_a_data_key() -> None:
    statements = grant_statements("audit")
    assert 'revoke update, delete, truncate on "audit"."ledger" from "safeguard_audit"' in statements
    # Data keys are made, read and destroyed (crypto-shredding), never updated.
    assert 'revoke update, truncate on "audit"."data_keys" from "safeguard_audit"' in statements
    assert not any("data_keys" in statement for statement in grant_statements("routing"))


def test_nobody_but_the_owner_creates_anything_in_the_database() -> None:
    statements = database_statements("safeguard")
    assert 'revoke create, temporary on database "safeguard" from public' in statements
    assert 'grant connect, create on database "safeguard" to "safeguard_owner"' in statements


def test_each_service_url_names_its_own_role() -> None:
    url = role_url("postgresql+asyncpg://postgres:pw@127.0.0.1:5544/safeguard", role="safeguard_audit", password="p")
    assert url == "postgresql+asyncpg://safeguard_audit:p@127.0.0.1:5544/safeguard"


def test_the_banner_shows_the_database_without_any_password() -> None:
    url = "postgresql+asyncpg://postgres:s3cret-superuser@127.0.0.1:5544/safeguard"
    assert shown_database_url(url, per_service_roles=True) == "postgresql+asyncpg://127.0.0.1:5544/safeguard"
    assert "s3cret" not in shown_database_url(url, per_service_roles=False)
