"""The multi-host deployment files hold together (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path

import yaml

from moulin.settings import REPO_ROOT

DOCKER = REPO_ROOT / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_all_roles_are_services() -> None:
    services = _compose()["services"]
    expected = {
        "namenode",
        "datanode-0",
        "datanode-1",
        "datanode-2",
        "spark-master",
        "spark-worker-0",
        "spark-worker-1",
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
    }
    assert expected <= set(services)


def test_built_images_come_from_files_that_exist() -> None:
    for name, service in _compose()["services"].items():
        build = service.get("build")
        if build is None:
            assert ":" in service["image"], f"{name}: pin the image tag"
            continue
        context = (DOCKER / build["context"]).resolve()
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert (context / src).exists(), f"{dockerfile.name} copies missing {src}"


def test_commands_are_real_cli_roles() -> None:
    from moulin.cli import build_parser

    parser = build_parser()
    for service in _compose()["services"].values():
        command = service.get("command")
        if command and command[0] == "moulin":
            parser.parse_args(command[1:])  # exits on an unknown role


def test_ports_volumes_and_dependencies() -> None:
    compose = _compose()
    services = compose["services"]
    published = {p.split(":")[0] for s in services.values() for p in s.get("ports", [])}
    assert {"9870", "9820", "7077", "8080"} <= published
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared, f"{name}: undeclared volume {source}"
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
    assert services["namenode"]["environment"]["MOULIN_HDFS_REPLICATION"] == "2"
    assert (
        "postgresql"
        in services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"]
    )


def test_entrypoint_is_executable() -> None:
    assert Path(DOCKER / "entrypoint.sh").stat().st_mode & 0o111


def test_no_secret_is_written_in_the_compose_file() -> None:
    """Secrets reach the services as files from MOULIN_SECRETS_DIR (required, no default)."""
    compose = _compose()
    text = (DOCKER / "compose.yaml").read_text()
    for service in compose["services"].values():
        env = service.get("environment") or {}
        for key, value in env.items():
            if any(word in key for word in ("PASSWORD", "SECRET", "FERNET", "SQL_ALCHEMY_CONN")):
                assert key.endswith(("_CMD", "_FILE")), f"{key} holds a secret inline: read it from a file"
                assert "/run/secrets/" in str(value), f"{key} does not read a mounted secret"
    files = [s["file"] for s in compose["secrets"].values()]
    assert files and all(f.startswith("${MOULIN_SECRETS_DIR:?") for f in files), files
    assert "change-me" not in text and "POSTGRES_PASSWORD:" not in text


def test_compose_secret_files_are_the_ones_moulin_generates() -> None:
    from moulin.platform import secrets

    names = {s.name for s in secrets.ALL} | {"airflow-passwords.json"}
    for spec in _compose()["secrets"].values():
        assert spec["file"].rsplit("/", 1)[1] in names, spec
