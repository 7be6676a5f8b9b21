"""Contract loading: errors name the file, the line and the field; valid files load."""

from pathlib import Path

import pytest

from monitor.contracts import ContractError, load_contracts, parse_contracts

GOOD = """
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h}, objective: 0.9}
"""


def error(text: str) -> str:
    with pytest.raises(ContractError) as info:
        parse_contracts(text, "c.yaml")
    return str(info.value)


def test_bad_duration_names_line_and_path():
    msg = error(GOOD.replace("P1: 1h", "P1: 1x"))
    assert msg.startswith("c.yaml:6: clients.acme.slas.0.target.P1") and "'90s'" in msg


def test_unknown_timezone():
    assert "c.yaml:4: clients.acme.timezone" in error(GOOD.replace("Europe/Berlin", "Mars/Olympus"))


def test_ratio_out_of_range():
    msg = error(GOOD.replace("objective: 0.9", "objective: 1.5"))
    assert "c.yaml:6" in msg and "objective" in msg


def test_missing_field():
    msg = error(GOOD.replace(", objective: 0.9", ""))
    assert "objective" in msg and "Field required" in msg


def test_unknown_field_is_rejected():
    assert "colour" in error(GOOD.replace("objective: 0.9", "objective: 0.9, colour: red"))


def test_service_level_needs_within():
    text = GOOD.replace("{name: fr, kind: first_response, target: {P1: 1h}, objective: 0.9}",
                        "{name: sl, kind: service_level, target: 0.8}")
    assert "within" in error(text)


def test_duplicate_sla_names():
    text = GOOD + "      - {name: fr, kind: resolution, target: {P1: 1h}, objective: 0.9}\n"
    assert "unique" in error(text)


def test_penalty_tiers_must_match_the_kind():
    text = GOOD.replace("objective: 0.9}", "objective: 0.9, penalty: {monthly_fee: 100, currency: EUR, "
                        "tiers: [{above: 0.5, credit_percent: 5}]}}")
    assert "below" in error(text)


def test_hours_and_day_ranges():
    hours_yaml = "{hours: {mon-fri: ['08:00-12:00', '13:00-17:00'], sat: '09:00-13:00'}}"
    c = parse_contracts(GOOD.replace("timezone: Europe/Berlin",
                                     f"timezone: Europe/Berlin\n    calendar: {hours_yaml}"))
    hours = c.clients["acme"].calendar.weekly_minutes()
    assert hours[0] == ((480, 720), (780, 1020)) and hours[5] == ((540, 780),) and 6 not in hours
    overlapping = "{hours: {mon: ['08:00-12:00', '11:00-17:00']}}"
    assert "overlapping" in error(GOOD.replace("timezone: Europe/Berlin",
                                               f"timezone: Europe/Berlin\n    calendar: {overlapping}"))


def test_unknown_holiday_country():
    assert "holiday" in error(GOOD.replace("timezone: Europe/Berlin",
                                           "timezone: Europe/Berlin\n    calendar: {holidays: {country: XX}}"))


def test_not_yaml():
    assert error("clients: [unclosed").startswith("c.yaml:")


def test_yaml_is_loaded_safely():
    assert "c.yaml" in error("!!python/object/apply:os.system ['echo pwned']")


def test_missing_file(tmp_path):
    with pytest.raises(ContractError, match="cannot read"):
        load_contracts(tmp_path / "nope.yaml")


def test_example_contracts_load():
    for path in Path(__file__).parents[2].joinpath("examples").glob("*contracts.yaml"):
        load_contracts(path)


def test_version_absent_reads_as_1_and_unknown_versions_are_refused():
    assert parse_contracts(GOOD, "c.yaml").version == 1
    assert parse_contracts("version: 1\n" + GOOD, "c.yaml").version == 1
    for bad in ("2", "0", "'1'", "1.0", "true", "[1]", "null"):
        msg = error(f"version: {bad}\n" + GOOD)
        assert msg.startswith("c.yaml:1: version: unsupported version") and "(supported: 1)" in msg, msg


def test_unknown_version_has_a_hint():
    with pytest.raises(ContractError) as info:
        parse_contracts("version: 2\n" + GOOD, "c.yaml")
    assert "version: 1" in info.value.hint and info.value.exit_code == 2


def test_a_key_given_twice_is_refused_with_both_lines():
    msg = error(GOOD.replace("    timezone: Europe/Berlin\n", "    timezone: Europe/Berlin\n    timezone: UTC\n"))
    assert msg == "c.yaml:5: not valid YAML: key 'timezone' is given twice (first on line 4)"
    assert "given twice" in error(GOOD + "clients: {}\n")


def test_merge_keys_may_be_overridden():
    text = ("clients:\n"
            "  acme: &a {timezone: UTC, slas: [{name: a, kind: accuracy, target: 0.9}]}\n"
            "  beta:\n    <<: *a\n    timezone: Europe/Berlin\n")
    contracts = parse_contracts(text, "c.yaml")
    assert contracts.clients["beta"].timezone == "Europe/Berlin" and contracts.clients["acme"].timezone == "UTC"


def test_the_loader_is_shared_with_the_alerting_config():
    from alerts.config import AlertingError, parse_alerting
    from monitor import yaml_loader
    from monitor.contracts import _ContractLoader
    from monitor.errors import SlamonError

    assert _ContractLoader is yaml_loader.SafeYamlLoader
    assert issubclass(ContractError, SlamonError) and issubclass(ContractError, ValueError)
    with pytest.raises(AlertingError, match=r"a.yaml:2: not valid YAML: key 'imminent' is given twice"):
        parse_alerting("imminent: {within: 15m}\nimminent: {within: 30m}\n", "a.yaml", env={})


def test_a_directory_and_a_binary_file_are_contract_errors(tmp_path):
    with pytest.raises(ContractError, match="it is a directory"):
        load_contracts(tmp_path)
    (tmp_path / "b.yaml").write_bytes(b"clients:\n\xff\xfe")
    with pytest.raises(ContractError, match=r"b.yaml:2: not UTF-8"):
        load_contracts(tmp_path / "b.yaml")
