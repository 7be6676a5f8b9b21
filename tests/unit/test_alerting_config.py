"""The alerting config file: read by monitor.yaml_loader like the contracts (limits, no duplicate keys, errors
with the file, the line and the field), versioned (absent: 1; an unknown version is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.config import AlertingError, load_alerting, parse_alerting
from monitor.errors import SlamonError

ROOT = Path(__file__).resolve().parents[2]
ALERTING_FILES = [ROOT / "examples" / "alerting.yaml", ROOT / "deploy" / "alertmanager" / "alerting.yaml",
                  ROOT / "deploy" / "local" / "alerting.yaml"]


def error(text: str, env: dict | None = None) -> AlertingError:
    with pytest.raises(AlertingError) as info:
        parse_alerting(text, "a.yaml", env=env or {})
    return info.value


@pytest.mark.parametrize("path", ALERTING_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_say_version_1(path):
    assert load_alerting(path, env={}).version == 1
    assert any(line.startswith("version: 1") for line in path.read_text().splitlines())


def test_version_absent_is_1_and_unknown_versions_are_refused():
    assert parse_alerting("", env={}).version == 1
    assert parse_alerting("imminent: {within: 15m}", env={}).version == 1
    assert parse_alerting("alerting:\n  version: 1\n  imminent: {within: 15m}", env={}).imminent.within == "15m"
    assert parse_alerting("version: 1\nalerting:\n  burn_rate: {min_volume: 7}", env={}).burn_rate.min_volume == 7
    for text, line in (("version: 2", 1), ("imminent: {within: 15m}\nversion: '1'", 2),
                       ("alerting:\n  version: 9\n", 2)):
        err = error(text)
        assert str(err).startswith(f"a.yaml:{line}: version: unsupported version") and "(supported: 1)" in str(err)
        assert "version: 1" in err.hint


def test_validation_errors_name_the_line_and_the_field():
    err = error("runbook_base_url: x\nimminent:\n  within: 45m\n")
    assert str(err).startswith("a.yaml:3: imminent.within: Input should be '15m', '30m' or '60m'")
    nested = error("alerting:\n  calls:\n    window: soon\n")
    assert str(nested).startswith("a.yaml:3: calls.window:")
    assert str(error("slas: {acme: {min_volume: 3}}")).startswith("a.yaml:1: slas")
    assert "a.yaml:1: routing.page_group_wait" in str(error("routing: {page_group_wait: 2.5s}"))


def test_an_unset_environment_variable_names_the_line():
    err = error("imminent: {within: 15m}\nrunbook_base_url: ${SLAMON_X}\n")
    assert str(err) == ("a.yaml:2: runbook_base_url: environment variable SLAMON_X is not set "
                        "(write ${SLAMON_X:-default})")


def test_hostile_yaml_is_refused_like_contracts(tmp_path):
    assert "given twice" in str(error("disable: []\ndisable: [X]\n"))
    assert "nested deeper" in str(error("severity: " + "[" * 200 + "]" * 200))
    bomb = "a0: &a0 [x]\n" + "\n".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]"
                                       for i in range(1, 10)) + "\ndisable: *a9\n"
    assert "alias" in str(error(bomb))
    assert "a.yaml:1: not valid YAML" in str(error("x: !!python/object/apply:os.system ['true']"))
    assert "a.yaml:1: expected a mapping" in str(error("[1, 2]"))
    (tmp_path / "bin.yaml").write_bytes(b"disable: []\n\xff")
    with pytest.raises(AlertingError, match=r"bin.yaml:2: not UTF-8"):
        load_alerting(tmp_path / "bin.yaml")
    with pytest.raises(AlertingError, match="it is a directory"):
        load_alerting(tmp_path)
    with pytest.raises(AlertingError, match="cannot read"):
        load_alerting(tmp_path / "missing.yaml")


def test_alerting_error_is_a_slamon_error():
    assert issubclass(AlertingError, SlamonError) and issubclass(AlertingError, ValueError)
    assert error("version: 2").exit_code == 2
