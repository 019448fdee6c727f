"""What docker-compose.yml and deploy/k8s run before the services: per-consumer secrets, then the setup job."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import asyncpg
import nats
import pytest

from services.audit.query_gate import QueryGate
from services.launcher.deployment import set_up, write_deployment_secrets
from services.launcher.embedded_nats import EmbeddedNats
from shared.actor_tokens import ActorVerifier, issue, load_or_create_issuer_key
from shared.contracts.envelope import utc_now
from shared.db import asyncpg_dsn
from shared.db_roles import role_url
from shared.settings import Settings
from shared.subjects import Subjects

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "routing", "notifications", "audit")


def test_each_consumer_gets_a_private_folder_with_only_its_own_secrets(tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    write_deployment_secrets(out, subjects=Subjects(root="sg", stream="SAFEGUARD_EVENTS"))
    assert sorted(path.name for path in (out / "intake").iterdir()) == ["database.password", "nats.password"]
    # Audit believes the console (the auditor view) and keeps its own keys, made once here, never in the database.
    assert sorted(path.name for path in (out / "audit").iterdir()) == [
        "console.pub",
        "database.password",
        "head-signing-key.pem",
        "key-encryption-key",
        "nats.password",
    ]
    # Notifications believes the console alone (push subscriptions), from its public key.
    assert sorted(path.name for path in (out / "notifications").iterdir()) == [
        "console.pub",
        "database.password",
        "nats.password",
    ]
    # The console signs actor tokens with its own key; routing holds only the issuers' public keys.
    assert sorted(path.name for path in (out / "console").iterdir()) == [
        "console.key",
        "database.password",
        "nats.password",
    ]
    assert sorted(path.name for path in (out / "routing").iterdir()) == [
        "console.pub",
        "database.password",
        "nats.password",
        "operator.pub",
    ]
    key = load_or_create_issuer_key(out / "console", issuer="console")
    signed = issue(key, issuer="console", person_id="s-bird", school_id="st-marks", now=utc_now())
    assert ActorVerifier.from_folder(out / "routing").verify(signed, now=utc_now()).person_id == "s-bird"
    for_push = issue(
        key, issuer="console", person_id="s-bird", school_id="st-marks", now=utc_now(), audience="notifications"
    )
    notifications = ActorVerifier.from_folder(out / "notifications", audience="notifications")
    assert notifications.verify(for_push, now=utc_now()).person_id == "s-bird"
    # Audit answers the auditor view from the folder it is given (SAFEGUARD_ACTOR_KEYS_DIR=/run/safeguard).
    gate = QueryGate.from_settings(actor_keys_dir=out / "audit", policy_dir=REPO_ROOT / "deploy" / "policies")
    for_audit = issue(key, issuer="console", person_id="a-reed", school_id="st-marks", now=utc_now(), audience="audit")
    assert gate.claims({"assertion": for_audit}, now=utc_now()).person_id == "a-reed"
    assert [path.name for path in (out / "postgres").iterdir()] == ["superuser.password"]
    assert "auth.conf" in {path.name for path in (out / "nats").iterdir()}
    for path in out.rglob("*"):
        if path.parent.name != "postgres" and path.name != "postgres":
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    users = json.loads((out / "nats" / "auth.conf").read_text())["accounts"]["SAFEGUARD"]["users"]
    by_name = {user["user"]: user["password"] for user in users}
    assert by_name["intake"] == (out / "intake" / "nats.password").read_text().strip()
    kept = ("audit/database.password", "console/console.key", "audit/head-signing-key.pem", "audit/key-encryption-key")
    before = [(out / name).read_text() for name in kept]
    write_deployment_secrets(out, subjects=Subjects(root="sg", stream="SAFEGUARD_EVENTS"))
    after = [(out / name).read_text() for name in kept]
    assert after == before, "passwords and keys are kept across runs"


async def test_the_setup_job_creates_roles_schemas_and_streams(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "secrets"
    write_deployment_secrets(out, subjects=Subjects.from_settings(settings))
    server = EmbeddedNats(tmp_path / "nats", config_file=out / "nats" / "auth.conf")
    server.start()
    try:
        configured = settings.model_copy(update={"nats_url": server.url})
        await set_up(configured, secrets=out / "setup")
        password = (out / "routing" / "nats.password").read_text().strip()
        client = await nats.connect(server.url, user="routing", password=password, inbox_prefix="_INBOX.routing")
        try:
            info = await client.jetstream().stream_info(settings.stream_name)
        finally:
            await client.close()
        assert info.config.deny_delete
    finally:
        server.stop()
    audit_password = (out / "audit" / "database.password").read_text().strip()
    audit_url = role_url(settings.database_url, role="safeguard_audit", password=audit_password)
    audit = await asyncpg.connect(asyncpg_dsn(audit_url))
    try:
        assert await audit.fetchval("select count(*) from audit.ledger") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await audit.execute("delete from audit.ledger")
    finally:
        await audit.close()
