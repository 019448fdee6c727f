"""Audit in docker-compose.yml and deploy/k8s: its keys and witness log outlive the container, it sees console.pub."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.audit.heads import load_or_create_signing_key
from services.audit.kek import load_or_create_kek
from services.audit.settings import AuditSettings
from services.launcher.deployment import AUDIT_KEK, AUDIT_SIGNING_KEY
from tests.unit.test_compose import COMPOSE_FILE, REPO_ROOT, _named

AUDIT_PATHS = ("SAFEGUARD_AUDIT_SIGNING_KEY_PATH", "SAFEGUARD_AUDIT_KEK_PATH", "SAFEGUARD_AUDIT_WITNESS_LOG_PATH")


def _audit_settings(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AuditSettings:
    """What audit's own settings read from this environment (so a misspelt variable name fails here)."""
    for name in AUDIT_PATHS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        if name.startswith("SAFEGUARD_AUDIT_"):
            monkeypatch.setenv(name, value)
    return AuditSettings()


def _under(path: Path, folder: str) -> bool:
    return path.is_absolute() and path.parent == Path(folder)


def test_compose_keeps_audits_keys_in_its_credentials_and_its_witness_log_on_its_own_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    audit = compose["services"]["audit"]
    settings = _audit_settings(audit["environment"], monkeypatch)
    [credentials] = [volume for volume in audit["volumes"] if isinstance(volume, dict)]
    assert credentials["volume"] == {"subpath": "audit"}
    # The keys `credentials` made once (named as the secrets step names them), read-only beside the passwords.
    assert settings.signing_key_path == Path(credentials["target"]) / AUDIT_SIGNING_KEY
    assert settings.kek_path == Path(credentials["target"]) / AUDIT_KEK
    assert "audit-data:/data/audit" in audit["volumes"] and "audit-data" in compose["volumes"]
    assert _under(settings.witness_log_path, "/data/audit")
    sharing = [name for name, service in compose["services"].items() if "audit-data" in str(service.get("volumes"))]
    assert sharing == ["audit"], "one writer of the witness log"
    assert audit["environment"]["SAFEGUARD_ACTOR_KEYS_DIR"] == credentials["target"]


def test_the_image_holds_the_policies_audit_reads_and_a_folder_its_user_owns_for_the_volume() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    [policy_dir] = re.findall(r"SAFEGUARD_POLICY_DIR=(\S+)", dockerfile)
    assert policy_dir == "/app/deploy/policies" and "WORKDIR /app" in dockerfile
    assert "COPY deploy/policies ./deploy/policies" in dockerfile
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "SAFEGUARD_POLICY_DIR" not in compose["services"]["audit"]["environment"], "the image's folder is used"
    assert "SAFEGUARD_POLICY_DIR" not in _named("ConfigMap", "safeguard-config")["data"]
    # A new named volume copies the image folder's owner: without it the service user could not write there.
    assert "/data/audit" in dockerfile and "chown -R safeguard:safeguard /data" in dockerfile


def _audit_pod() -> dict[str, Any]:
    return _named("Deployment", "safeguard-audit")["spec"]["template"]["spec"]


def test_k8s_audit_is_one_pod_writing_its_witness_log_on_a_read_write_once_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = _named("Deployment", "safeguard-audit")["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    pod = _audit_pod()
    [container] = pod["containers"]
    environment = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = _audit_settings(environment, monkeypatch)
    [witness] = [volume for volume in pod["volumes"] if volume["name"] == "witness"]
    claim = _named("PersistentVolumeClaim", witness["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    [mount] = [mount for mount in container["volumeMounts"] if mount["name"] == "witness"]
    assert _under(settings.witness_log_path, mount["mountPath"]) and not mount.get("readOnly")


def test_k8s_audit_reads_its_keys_from_its_own_secret_copied_owner_only_into_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pod = _audit_pod()
    [container] = pod["containers"]
    environment = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = _audit_settings(environment, monkeypatch)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["audit-keys"]["emptyDir"] == {"medium": "Memory"}
    secret = volumes["audit-secret"]["secret"]
    assert secret["secretName"] == "safeguard-audit"
    assert {item["key"] for item in secret["items"]} == {AUDIT_SIGNING_KEY, AUDIT_KEK}
    [keys_mount] = [mount for mount in container["volumeMounts"] if mount["name"] == "audit-keys"]
    assert settings.signing_key_path == Path(keys_mount["mountPath"]) / AUDIT_SIGNING_KEY
    assert settings.kek_path == Path(keys_mount["mountPath"]) / AUDIT_KEK
    # The init container's copy, run against a Secret-like folder (group-readable files): the loaders accept it.
    [copy] = pod["initContainers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in copy["volumeMounts"]}
    source, target = tmp_path / "secret", tmp_path / "keys"
    source.mkdir()
    target.mkdir()
    signing_key = load_or_create_signing_key(source / AUDIT_SIGNING_KEY)
    kek = load_or_create_kek(source / AUDIT_KEK)
    for name in (AUDIT_SIGNING_KEY, AUDIT_KEK):
        (source / name).chmod(0o440)
    with pytest.raises(PermissionError):
        load_or_create_kek(source / AUDIT_KEK)  # why the copy: a Secret's file is group-readable
    script = copy["command"][2].replace(mounts["audit-secret"], str(source)).replace(mounts["audit-keys"], str(target))
    assert copy["command"][:2] == ["python", "-c"]
    subprocess.run([sys.executable, "-c", script], check=True)
    for name in (AUDIT_SIGNING_KEY, AUDIT_KEK):
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o600
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert load_or_create_kek(target / AUDIT_KEK).key_id == kek.key_id
    assert load_or_create_signing_key(target / AUDIT_SIGNING_KEY).public_key() == signing_key.public_key()


def test_k8s_audit_believes_the_console_from_its_own_secret_and_holds_no_issuer_key() -> None:
    pod = _audit_pod()
    environment = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert environment["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard"
    [credentials] = [volume for volume in pod["volumes"] if volume["name"] == "credentials"]
    assert credentials["secret"]["secretName"] == "safeguard-audit"
    assert {"key": "console.pub", "path": "console.pub"} in credentials["secret"]["items"]
    assert all(not item["key"].endswith(".key") for item in credentials["secret"]["items"])
