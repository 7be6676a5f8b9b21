"""Static checks of the deployment files: docker-compose.yml, Dockerfile, deploy/prometheus, deploy/alertmanager,
deploy/k8s. Nothing is started (there is no Docker engine in CI), but everything that can be checked without
one is: `docker-compose config -q`, pinned image tags, every mounted host path present in the repository,
healthchecks behind `service_healthy`, no secret values, the k8s YAML parses and has the kinds the scaling story
needs. (That the generated files are up to date is a unit test: tests/unit/test_deploy_generated.py.)

docker-compose: Debian's `docker-compose` package (apt-get install docker-compose; .ci/install-services.sh);
`docker compose` (the v2 plugin) is used when present instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
SECRET_WORDS = re.compile(r"(password|passwd|secret|token|api[_-]?key|credential|private[_-]?key)", re.I)


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


# --- docker-compose.yml -----------------------------------------------------------------------------------


def test_compose_config_is_valid(services_required):
    cli = _compose_cli()
    if cli is None:
        reason = "docker-compose not installed (apt-get install docker-compose)"
        if services_required:
            pytest.fail(reason + " [SLAMON_REQUIRE_SERVICES is set]", pytrace=False)
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_HOST"))}
    result = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout


def test_expected_services():
    services = _services()
    for name in ("kafka", "topics", "worker-1", "worker-2", "generator", "prometheus", "alertmanager", "grafana"):
        assert name in services, f"service {name} missing"
    assert services["worker-1"]["command"] == ["worker"]
    assert services["topics"]["command"] == ["topics", "create"]
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]


def test_every_image_tag_is_pinned():
    for name, svc in _services().items():
        image = svc.get("image")
        assert image, f"{name}: no image (a build needs an explicit name:tag too)"
        ref = image.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        assert ":" in last or "@" in image, f"{name}: image {image!r} has no tag"
        tag = last.split(":", 1)[1] if ":" in last else ""
        assert tag and tag != "latest" and not tag.startswith("latest"), f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: tag {tag!r} names no version"
    assert _services()["kafka"]["image"].startswith("apache/kafka:")


def test_dockerfile_is_pinned_and_installs_the_package():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms, "no FROM"
    for image in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), f"base image {image} not a pinned 3.11 slim"
    for image in re.findall(r"^COPY\s+--from=(\S+)", text, re.M):
        assert image == "build" or re.fullmatch(r"[\w.-]+:\d+\.\d+\.\d+-[\w.-]+", image), f"{image} not pinned"
    # the build stage makes the wheel (with the compiled crates), the image installs it and checks they are in it
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /wheels \.$", text, re.M)
    assert re.search(r"^RUN pip install /wheels/\*\.whl", text, re.M)
    for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+?)\s+\S+$", text, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    # every package the wheel holds (and every compiled crate) is copied before it is built
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    before_build = text[:text.index("RUN pip wheel")]
    copied = {path.rstrip("/") for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+?)\s+\S+$", before_build,
                                                      re.M) for path in src.split()}
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    extensions = project["tool"]["setuptools-rust"]["ext-modules"]
    crates = {ext["path"].split("/")[0] for ext in extensions}
    assert packages | crates <= copied, f"Dockerfile builds before copying {sorted((packages | crates) - copied)}"
    checked = re.search(r'python -c "(import slamon\._router[^"]*)"', text)
    assert checked and {ext["target"] for ext in extensions} <= set(re.findall(r"[\w.]+\._\w+", checked.group(1))), \
        "the image must check that every compiled module is in it"


def _host_path(source: str) -> Path | None:
    """The host path of a short-syntax bind mount, None for a named volume."""
    if source.startswith((".", "/", "~")):
        return (ROOT / source).resolve() if not source.startswith("/") else Path(source)
    return None


def test_every_mounted_host_path_exists():
    compose = _compose()
    named = set(compose.get("volumes") or {})
    checked = 0
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            if isinstance(vol, dict):
                source, kind = vol.get("source"), vol.get("type", "volume")
                path = (ROOT / source).resolve() if kind == "bind" else None
            else:
                source = vol.split(":", 1)[0]
                path = _host_path(source)
            if path is None:
                assert source in named, f"{name}: named volume {source!r} not declared under volumes:"
                continue
            assert path.exists(), f"{name}: mounts {source}, which does not exist in the repository"
            assert ROOT in path.parents, f"{name}: mounts {source} from outside the repository"
            checked += 1
        for env_file in ([svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get("env_file", [])):
            assert (ROOT / env_file).is_file(), f"{name}: env_file {env_file} missing"
        build = svc.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} missing"
    assert checked >= 8
    # the dirs the others generate are not empty
    assert list((ROOT / "deploy/prometheus/rules").glob("*.yml")), "no generated rule files"
    assert list((ROOT / "deploy/grafana/dashboards").glob("*.json")), "no generated dashboards"
    assert list((ROOT / "deploy/grafana/provisioning/datasources").glob("*.y*ml"))
    assert list((ROOT / "deploy/grafana/provisioning/dashboards").glob("*.y*ml"))


def test_secrets_are_files_outside_the_repository_history():
    compose = _compose()
    ignore = (ROOT / "deploy/secrets/.gitignore").read_text(encoding="utf-8").split()
    assert "*" in ignore, "deploy/secrets/.gitignore must ignore every secret file"
    for name, spec in (compose.get("secrets") or {}).items():
        assert "file" in spec, f"secret {name}: file-based secrets only in this stack"
        path = (ROOT / spec["file"]).resolve()
        assert path.parent == ROOT / "deploy" / "secrets", f"secret {name} lives outside deploy/secrets"
    for name, svc in compose["services"].items():
        for secret in svc.get("secrets", []):
            secret = secret if isinstance(secret, str) else secret["source"]
            assert secret in (compose.get("secrets") or {}), f"{name}: undeclared secret {secret}"


def test_no_secret_values_in_compose_or_env_files():
    texts = {"docker-compose.yml": COMPOSE.read_text(encoding="utf-8")}
    for env_file in (ROOT / "deploy/compose").glob("*.env"):
        texts[str(env_file.relative_to(ROOT))] = env_file.read_text(encoding="utf-8")
    for name, svc in _services().items():
        env = svc.get("environment") or {}
        pairs = env.items() if isinstance(env, dict) else [tuple([*e.split("=", 1), ""][:2]) for e in env]
        for key, value in pairs:
            if SECRET_WORDS.search(key) and value not in (None, ""):
                assert key.endswith(("_FILE", "__FILE")), f"{name}: {key} carries a value; use a secret file"
    for where, text in texts.items():
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            m = re.match(r"\s*-?\s*([A-Za-z0-9_]+)\s*[:=]\s*(\S.*)?$", line)
            if m and SECRET_WORDS.search(m.group(1)) and m.group(2):
                assert m.group(1).endswith(("_FILE", "__FILE")) or m.group(2).startswith("/run/secrets"), \
                    f"{where}: {line.strip()!r} looks like a secret value"


def test_depends_on_uses_conditions_backed_by_healthchecks():
    services = _services()
    for name, svc in services.items():
        deps = svc.get("depends_on")
        if not deps:
            continue
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            cond = spec.get("condition")
            assert cond in ("service_healthy", "service_completed_successfully", "service_started"), (name, dep)
            if cond == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy; it has no check"
    for name in ("kafka", "worker-1", "worker-2", "prometheus", "alertmanager", "grafana"):
        assert services[name].get("healthcheck"), f"{name}: no healthcheck"
    assert services["worker-1"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def _not_settings(names) -> list[str]:
    """The SLAMON_* names that are no `streams.config.Settings` field, or a deprecated one that has no effect
    (state_store, standby_replicas: the worker keeps its snapshots in a Kafka topic, not a faust table)."""
    from streams.config import Settings

    process_knobs = {"SLAMON_CONFIG", "SLAMON_SNAPSHOT_INLINE", "SLAMON_SCRAPE_INLINE"}
    deprecated = {"state_store", "standby_replicas"}
    bad = []
    for name in names:
        if name in process_knobs:
            continue
        top, _, sub = name.removeprefix("SLAMON_").lower().partition("__")
        field = Settings.model_fields.get(top)
        if field is None or top in deprecated or (sub and sub not in getattr(field.annotation, "model_fields", {})):
            bad.append(name)
    return bad


def test_state_lives_in_named_volumes():
    services = _services()

    def named_targets(svc):
        out = {}
        for vol in svc.get("volumes", []):
            if isinstance(vol, str) and _host_path(vol.split(":", 1)[0]) is None:
                source, target = vol.split(":")[:2]
                out[target] = source
        return out

    assert named_targets(services["kafka"]).get("/var/lib/kafka/data")
    w1 = named_targets(services["worker-1"]).get("/var/lib/slamon")
    w2 = named_targets(services["worker-2"]).get("/var/lib/slamon")
    assert w1 and w2 and w1 != w2, "each worker needs its own state volume"
    lines = (ROOT / "deploy/compose/slamon.env").read_text(encoding="utf-8").splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    # the data dir (snapshot files being written) is on the worker's own volume (above), never shared
    assert env["SLAMON_DATA_DIR"] == "/var/lib/slamon"
    assert not _not_settings(env), f"unknown or deprecated settings in slamon.env: {_not_settings(env)}"


def test_prometheus_config_scrapes_the_workers_and_loads_the_rules():
    cfg = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    targets = [t for sc in jobs["slamon"]["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == ["worker-1:9108", "worker-2:9108"]
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    mounts = _services()["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    am = [t for a in cfg["alerting"]["alertmanagers"] for sc in a["static_configs"] for t in sc["targets"]]
    assert am == ["alertmanager:9093"]
    if shutil.which("promtool"):
        files = sorted(map(str, (ROOT / "deploy/prometheus/rules").glob("*.yml")))
        result = subprocess.run(["promtool", "check", "rules", *files], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_the_mounts():
    grafana = _services()["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")}
    assert mounts["/etc/grafana/provisioning/datasources"] == "./deploy/grafana/provisioning/datasources"
    provider = yaml.safe_load(next((ROOT / "deploy/grafana/provisioning/dashboards").glob("*.y*ml")).read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == "./deploy/grafana/dashboards"
    for f in (ROOT / "deploy/grafana/dashboards").glob("*.json"):
        json.loads(f.read_text(encoding="utf-8"))
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"


# --- deploy/k8s -------------------------------------------------------------------------------------------


def _k8s_docs() -> dict[str, list[dict]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        out[path.name] = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    return out


def test_k8s_yaml_parses_and_has_the_required_kinds():
    docs = _k8s_docs()
    assert docs, "no manifests"
    kinds: dict[str, list[dict]] = {}
    for name, items in docs.items():
        for d in items:
            if name == "kustomization.yaml":
                assert d["kind"] == "Kustomization"
                continue
            assert {"apiVersion", "kind", "metadata"} <= set(d), f"{name}: not a manifest"
            kinds.setdefault(d["kind"], []).append(d)
    for kind in ("StatefulSet", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap", "Job", "Namespace"):
        assert kind in kinds, f"no {kind}"
    assert "Secret" not in kinds, "secret values never go into the repository"

    sts = kinds["StatefulSet"][0]
    spec = sts["spec"]
    assert spec["volumeClaimTemplates"], "workers need a volume each"
    assert any(s["spec"].get("clusterIP") == "None" and s["metadata"]["name"] == spec["serviceName"]
               for s in kinds["Service"]), "the StatefulSet's service must be headless"
    pod = spec["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    image = container["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    refs = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})]
    assert refs, "the worker should take its secret from a Secret reference"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claim = spec["volumeClaimTemplates"][0]["metadata"]["name"]
    settings = next(c for c in kinds["ConfigMap"] if c["metadata"]["name"] == "slamon-settings")["data"]
    assert mounts[claim] == settings["SLAMON_DATA_DIR"]
    assert not _not_settings(settings), f"unknown or deprecated settings in the ConfigMap: {_not_settings(settings)}"
    assert settings["SLAMON_CONTRACTS"].startswith(mounts["contracts"])
    assert spec["replicas"] <= int(settings["SLAMON_TOPICS__PARTITIONS"]), "more workers than partitions idle"

    sm = kinds["ServiceMonitor"][0]["spec"]
    svc_labels = next(s for s in kinds["Service"] if s["metadata"]["name"] == spec["serviceName"])["metadata"]["labels"]
    assert all(svc_labels.get(k) == v for k, v in sm["selector"]["matchLabels"].items())
    assert svc_labels[sm["jobLabel"]] == "slamon", "the pipeline alerts expect job=slamon"

    for name, items in docs.items():
        for d in items:
            text = yaml.safe_dump(d)
            assert not re.search(r"(?i)\b(password|token)\s*:\s*['\"]?[A-Za-z0-9+/]{8,}", text), name


def test_k8s_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kust["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
