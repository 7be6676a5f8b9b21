"""The committed generated deploy files equal a fresh generation (`make deploy-config`): the Prometheus rules and
alertmanager.yml under deploy/, and the k8s manifests built from them. No service is needed, so this is a unit
test (the other static deployment checks are tests/integration/test_compose.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from alerts.alertmanager import alertmanager_config
from alerts.config import load_alerting
from alerts.rules import rule_files
from monitor.contracts import load_contracts

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def test_generated_deploy_files_are_up_to_date():
    """deploy/prometheus/rules and deploy/alertmanager/alertmanager.yml equal a fresh `make deploy-config`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
    alerting = load_alerting(ROOT / "examples/alerting.yaml", env=env)
    fresh = rule_files(load_contracts(ROOT / "examples/contracts.yaml"), alerting)
    committed = {p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
                 for p in (ROOT / "deploy/prometheus/rules").glob("*.yml")}
    assert committed == fresh, "deploy/prometheus/rules is stale: run `make deploy-config`"
    am_alerting = load_alerting(ROOT / "deploy/alertmanager/alerting.yaml", env=env)
    am = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
    assert am == alertmanager_config(am_alerting, env), "alertmanager.yml is stale: run `make deploy-config`"
    urls = [w["url"] for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert "http://alert-console:8080/" in urls


def test_k8s_generated_manifests_are_up_to_date():
    result = subprocess.run([sys.executable, str(K8S / "generate.py"), "--check"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    cm = next(yaml.safe_load_all((K8S / "configmap-contracts.yaml").read_text(encoding="utf-8")))
    assert cm["data"]["contracts.yaml"] == (ROOT / "examples/contracts.yaml").read_text(encoding="utf-8")
    rule = next(yaml.safe_load_all((K8S / "prometheusrule.yaml").read_text(encoding="utf-8")))
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert "slamon:pipeline" in names and len(names) == len(set(names))
