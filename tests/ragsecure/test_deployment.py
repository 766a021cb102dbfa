"""The deployment files: every variable they set is one the service reads, every secret production needs is mapped
from Secrets Manager, and the image runs unprivileged."""

import re
from pathlib import Path

import pytest
import yaml

from ragsecure.secrets.base import SECRET_NAMES

ROOT = Path(__file__).resolve().parent.parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
# Read by their own libraries rather than by ragsecure's code.
READ_ELSEWHERE = {"DJANGO_SETTINGS_MODULE"}
PRODUCTION_SECRETS = {"django-secret-key", "jwt-signing-keys", "audit-hmac-key", "api-key-hmac-key", "database-password"}


def documents() -> list[dict]:
    return [document for path in sorted(KUBERNETES.glob("*.yaml")) for document in yaml.safe_load_all(path.read_text()) if document]


def of_kind(kind: str) -> list[dict]:
    return [document for document in documents() if document["kind"] == kind]


def project_source() -> str:
    files = [*ROOT.glob("ragsecure/**/*.py"), *ROOT.glob("accounts/**/*.py"), *ROOT.glob("audit/**/*.py"),
             *ROOT.glob("documents/**/*.py"), ROOT / "gunicorn.conf.py", ROOT / "manage.py"]
    return "\n".join(path.read_text() for path in files if "migrations" not in path.parts)


def variables_set() -> set[str]:
    names = set()
    for config in of_kind("ConfigMap"):
        names |= set(config["data"])
    for deployment in of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            names |= {variable["name"] for variable in container.get("env", [])}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.strip().startswith(("ENV", "RAGSECURE", "DJANGO", "PYTHON")):  # the ENV instruction and its continuations
            names |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", line.split("#")[0]))
    return names - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


def test_every_variable_the_deployment_sets_is_read_by_the_service():
    source = project_source()
    unread = sorted(name for name in variables_set() - READ_ELSEWHERE if f'"{name}"' not in source)
    assert not unread, f"set by the deployment files but read nowhere: {unread}"
    assert "RAGSECURE_SECRETS_DIR" in variables_set() and "DATABASE_URL" in variables_set()


def test_every_production_secret_is_mapped_from_secrets_manager():
    [external] = of_kind("ExternalSecret")
    mapped = {entry["secretKey"]: entry["remoteRef"]["key"] for entry in external["spec"]["data"]}
    assert PRODUCTION_SECRETS <= set(mapped)
    assert set(mapped) <= set(SECRET_NAMES)
    assert all(remote == f"ragsecure/{name}" for name, remote in mapped.items())
    production = (ROOT / "ragsecure" / "settings" / "production.py").read_text()
    for name in PRODUCTION_SECRETS:
        assert f'"{name}"' in production, name


def test_the_secret_volume_is_what_the_file_backend_reads():
    [config] = of_kind("ConfigMap")
    [deployment] = of_kind("Deployment")
    [external] = of_kind("ExternalSecret")
    spec = deployment["spec"]["template"]["spec"]
    target = external["spec"]["target"]["name"]
    secret_volumes = {volume["name"] for volume in spec["volumes"] if volume.get("secret", {}).get("secretName") == target}
    for container in spec["containers"]:
        mounts = {mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] in secret_volumes}
        assert config["data"]["RAGSECURE_SECRETS_DIR"] in mounts, container["name"]
    assert config["data"]["RAGSECURE_SECRETS_BACKEND"] == "file"


def test_the_pod_runs_unprivileged_with_the_audit_writer_beside_the_api():
    [deployment] = of_kind("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    commands = {container["name"]: container.get("command", []) for container in spec["containers"]}
    assert "audit_writer" in commands["audit-writer"]
    [config] = of_kind("ConfigMap")
    socket = config["data"]["RAGSECURE_AUDIT_WRITER_SOCKET"]
    assert socket in commands["audit-writer"]
    for container in spec["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_runs_gunicorn_with_its_config_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py"]' in dockerfile


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_probes_name_an_allowed_host(probe):
    [deployment] = of_kind("Deployment")
    [config] = of_kind("ConfigMap")
    [api] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "api"]
    headers = {header["name"]: header["value"] for header in api[probe]["httpGet"]["httpHeaders"]}
    assert headers["Host"] in config["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
