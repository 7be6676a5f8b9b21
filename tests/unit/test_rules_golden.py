"""Golden files of the rule generator, one per SLA kind (as Sloth's test/integration/prometheus/testdata/):
`testdata/rules/<case>.contracts.yaml` in, `testdata/rules/<case>.rules.yaml` out (every rule file that `slamon
rules` writes for it, by file name, with the default alerting config). A change of the generated rules shows
up as a diff of the golden file. After an intended change, rewrite them and review the diff:

    SLAMON_UPDATE_GOLDEN=1 python -m pytest -q tests/unit/test_rules_golden.py
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest
import yaml

from alerts.rules import HEADER, dump_yaml, rule_files
from monitor.contracts import Client, load_contracts

DATA = Path(__file__).parent / "testdata" / "rules"
CASES = sorted(p.name.removesuffix(".contracts.yaml") for p in DATA.glob("*.contracts.yaml"))
UPDATE = os.environ.get("SLAMON_UPDATE_GOLDEN", "").strip().lower() not in ("", "0", "false", "no")


def _generated(case: str) -> str:
    files = rule_files(load_contracts(DATA / f"{case}.contracts.yaml"))
    return HEADER + f"# Golden output of tests/unit/testdata/rules/{case}.contracts.yaml (rule file -> content).\n" \
        + dump_yaml(files)


@pytest.mark.parametrize("case", CASES)
def test_generated_rules_equal_the_golden_file(case):
    golden = DATA / f"{case}.rules.yaml"
    text = _generated(case)
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden.name} missing: run with SLAMON_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), \
        f"rules generated from {case}.contracts.yaml differ from {golden.name} (SLAMON_UPDATE_GOLDEN=1 rewrites it)"
    assert yaml.safe_load(text)  # and it is YAML


def _sla_kinds() -> set[str]:
    """Every `kind` the contract model accepts (the Literal of each SLA class)."""
    sla_union = typing.get_type_hints(Client, include_extras=True)["slas"]
    kinds: set[str] = set()

    def walk(tp) -> None:
        fields = getattr(tp, "model_fields", None)
        if fields is not None and "kind" in fields:
            kinds.update(typing.get_args(fields["kind"].annotation))
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(sla_union)
    return kinds


def test_every_sla_kind_has_a_golden_case():
    covered = {yaml.safe_load((DATA / f"{case}.contracts.yaml").read_text())["clients"]["acme"]["slas"][0]["kind"]
               for case in CASES}
    kinds = _sla_kinds()
    assert kinds, "no SLA kinds found in monitor.contracts"
    assert kinds <= covered, f"SLA kinds without a golden case: {sorted(kinds - covered)}"
