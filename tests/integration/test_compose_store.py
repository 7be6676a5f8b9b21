"""docker-compose's SLA record: the `postgres` and `store` services, the Grafana datasource that reads it, and the
secrets they share (static checks; `docker-compose config -q` is tests/integration/test_compose.py's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_store_runs_against_postgres_with_a_secret_password():
    compose = _compose()
    services = compose["services"]
    pg, store = services["postgres"], services["store"]
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", pg["image"])
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/store_db_password"
    assert "./deploy/compose/postgres-init:/docker-entrypoint-initdb.d:ro" in pg["volumes"]
    assert (ROOT / "deploy/compose/postgres-init/10-grafana-reader.sh").is_file()
    assert {"store_db_password", "store_grafana_password"} <= set(pg["secrets"])

    assert store["image"] == services["worker-1"]["image"] and "deploy/compose/slamon.env" in store["env_file"]
    assert "exec slamon store run" in store["entrypoint"][-2]
    assert "cat /run/secrets/store_db_password" in store["entrypoint"][-2]
    url = store["environment"]["SLAMON_STORE_URL"]
    assert url == f"postgresql://{pg['environment']['POSTGRES_USER']}@postgres:5432/{pg['environment']['POSTGRES_DB']}"
    assert store["secrets"] == ["store_db_password"]
    assert store["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert store["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert "postgres-data" in compose["volumes"]


def test_grafana_reads_the_record_as_the_read_only_role():
    compose = _compose()
    grafana, pg = compose["services"]["grafana"], compose["services"]["postgres"]
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/store.yaml").read_text())
    (ds,) = prov["datasources"]
    secret = re.fullmatch(r"\$__file\{/run/secrets/(\w+)\}", ds["secureJsonData"]["password"]).group(1)
    assert secret == "store_grafana_password" and secret in grafana["secrets"]
    assert f":-{pg['environment']['SLAMON_GRAFANA_READER']}}}" in ds["user"]  # the role the init script creates
    assert "postgres" not in grafana["depends_on"]  # the wallboards start without the record's database
    assert grafana["environment"]["SLAMON_STORE_PG_ADDRESS"] == "postgres:5432"


def test_make_secrets_creates_every_compose_secret():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    names = re.search(r"for name in ([\w ]+); do", makefile).group(1).split()
    assert set(names) == set(_compose()["secrets"])


def test_k8s_store_deployment():
    k8s = ROOT / "deploy/k8s"
    (dep,) = yaml.safe_load_all((k8s / "store.yaml").read_text(encoding="utf-8"))
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert "store.yaml" in yaml.safe_load((k8s / "kustomization.yaml").read_text())["resources"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    workers = yaml.safe_load((k8s / "statefulset.yaml").read_text())["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["store", "run"] and container["image"] == workers["image"]
    assert container["envFrom"] == workers["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert "@" in env["SLAMON_STORE_URL"]["value"] and ":" not in env["SLAMON_STORE_URL"]["value"].split("@")[0][13:]
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "slamon-store-db", "key": "password"}
    settings = yaml.safe_load((k8s / "configmap-settings.yaml").read_text())["data"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert settings["SLAMON_CONTRACTS"].startswith(mounts["contracts"])
