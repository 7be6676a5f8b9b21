"""The `slamon` command line: validate, replay (file, stdin, formats, --at), generate."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from slamon.cli import main
from tests.builders import call, ticket

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "contracts.yaml"
CONTRACT = """
clients:
  acme:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h}, objective: 0.9, time: calendar}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
"""


@pytest.fixture
def files(tmp_path):
    contracts = tmp_path / "c.yaml"
    contracts.write_text(CONTRACT)
    events = [
        ticket("2026-11-02T09:00:00Z", "T1", "created", priority="P1"),
        ticket("2026-11-02T09:30:00Z", "T1", "agent_reply"),
        ticket("2026-11-02T10:00:00Z", "T2", "created", priority="P1"),
        call("2026-11-02T10:00:00Z", "c1", "offered"), call("2026-11-02T10:00:30Z", "c1", "answered"),
    ]
    lines = b"\n".join(orjson.dumps(e) for e in events) + b"\n{broken\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines)
    return contracts, path


def test_validate_ok(capsys):
    assert main(["validate", str(EXAMPLES)]) == 0
    assert "ok (3 clients" in capsys.readouterr().out


def test_validate_reports_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONTRACT.replace("within: 20s", "within: soon"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7: clients.acme.slas.1.within" in err


def test_replay_json(files, capsys):
    contracts, events = files
    assert main(["replay", str(events), "--contracts", str(contracts), "--format", "json",
                 "--at", "2026-11-02T11:30:00Z"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    fr = next(r for r in doc["records"] if r["sla"] == "fr")
    assert (fr["decided"], fr["good"], fr["bad"], fr["breaches"]) == (2, 1, 1, ["T2"])
    sl = next(r for r in doc["records"] if r["sla"] == "sl")
    assert (sl["decided"], sl["bad"], sl["met"]) == (1, 1, False)
    assert doc["pipeline"]["rejected"] == {"malformed": 1} and "line 6" in out.err


def test_replay_at_excludes_later_events(files, capsys):
    contracts, events = files
    main(["replay", str(events), "--contracts", str(contracts), "--format", "json", "--at", "2026-11-02T09:59:00Z"])
    doc = json.loads(capsys.readouterr().out)
    fr = next(r for r in doc["records"] if r["sla"] == "fr")
    assert fr["decided"] == 1 and doc["pipeline"]["after_at"] == 3


def test_replay_csv_and_table(files, capsys):
    contracts, events = files
    main(["replay", str(events), "--contracts", str(contracts), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["sla"] for r in rows} == {"fr", "sl"} and rows[0]["penalty.credit"] == ""
    main(["replay", str(events), "--contracts", str(contracts)])
    table = capsys.readouterr().out
    assert "compliance" in table and "rejected: malformed 1" in table


def test_replay_reads_stdin(files):
    contracts, events = files
    proc = subprocess.run([sys.executable, "-m", "slamon.cli", "replay", "-", "--contracts", str(contracts),
                           "--format", "json"], input=events.read_bytes(), capture_output=True, check=True)
    assert json.loads(proc.stdout)["pipeline"]["accepted"] == 5


def test_bad_at_is_a_usage_error(files, capsys):
    contracts, events = files
    with pytest.raises(SystemExit):
        main(["replay", str(events), "--contracts", str(contracts), "--at", "2026-11-02T10:00:00"])
    assert "offset" in capsys.readouterr().err


def test_generate_then_replay_round_trip(tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    assert main(["generate", "--contracts", str(EXAMPLES), "--hours", "3", "--start", "2026-11-02T08:00:00Z",
                 "--seed", "3", "--scenario", "outage:globex-bank:1h:20m", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["replay", str(out), "--contracts", str(EXAMPLES), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pipeline"]["accepted"] > 100 and not doc["pipeline"]["rejected"]
    uptime = [r for r in doc["records"] if r["kind"] == "uptime" and r["client"] == "globex-bank"]
    assert uptime and all(r["bad"] >= 20 * 60 - 120 for r in uptime)  # the injected 20-minute outage


# --- 1999: any event time from 1970 on (spec section 1) ----------------------------------------------------

CALL_CENTRE_1999 = """
version: 1
clients:
  acme:
    timezone: America/Chicago
    slas:
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: asa, kind: asa, target: 30s}
      - {name: abandon, kind: abandon_rate, target: 0.05}
"""


def test_a_february_1999_call_centre_log_replays(tmp_path, capsys):
    contracts = tmp_path / "c.yaml"
    contracts.write_text(CALL_CENTRE_1999)
    events = [
        call("1999-02-15T09:00:00-06:00", "c1", "offered"), call("1999-02-15T09:00:10-06:00", "c1", "answered"),
        call("1999-02-15T09:01:00-06:00", "c2", "offered"), call("1999-02-15T09:01:50-06:00", "c2", "answered"),
        call("1999-02-15T09:02:00-06:00", "c3", "offered"), call("1999-02-15T09:03:00-06:00", "c3", "abandoned"),
        call("1999-02-16T14:00:00-06:00", "c4", "offered"), call("1999-02-16T14:00:05-06:00", "c4", "answered"),
    ]
    path = tmp_path / "feb1999.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    assert main(["replay", str(path), "--contracts", str(contracts), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pipeline"]["accepted"] == 8 and not doc["pipeline"]["rejected"]
    assert doc["pipeline"]["at"] == "1999-02-16T20:00:05Z"
    by_sla = {r["sla"]: r for r in doc["records"]}
    assert {r["period"] for r in doc["records"]} == {"1999-02"}
    sl = by_sla["sl"]  # c1 and c4 within 20 s; c2 answered after 50 s; c3 abandoned after 60 s (counted)
    assert (sl["decided"], sl["good"], sl["met"]) == (4, 2, False)
    assert by_sla["asa"]["value"] == pytest.approx((10 + 50 + 5) / 3)
    assert by_sla["abandon"]["value"] == pytest.approx(1 / 4)


# --- exit codes ------------------------------------------------------------------------------------------------


def test_fail_on_breach_exits_1_only_when_asked(files, capsys):
    contracts, events = files
    args = ["replay", str(events), "--contracts", str(contracts), "--format", "json", "--at", "2026-11-02T11:30:00Z"]
    assert main(args) == 0
    assert main([*args, "--fail-on-breach"]) == 1  # fr: 1 of 2 in time vs 90 %
    assert "breach:" in capsys.readouterr().err
    assert main(["replay", str(events), "--contracts", str(contracts), "--at", "2026-11-02T09:45:00Z",
                 "--fail-on-breach"]) == 0  # only T1, answered in time; no call decided yet
    capsys.readouterr()


@pytest.mark.parametrize("text", [b"garbage\n", b"", b"\n\n", b'{"event_id": "x"}\n'])
def test_nothing_accepted_exits_3_without_a_1970_footer(files, text):
    contracts, _events = files
    proc = subprocess.run([sys.executable, "-m", "slamon", "replay", "-", "--contracts", str(contracts)],
                          input=text, capture_output=True, cwd=ROOT)
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.decode()
    assert "error: no event" in err and "1970" not in err + proc.stdout.decode() and "Traceback" not in err


def test_all_events_after_at_is_nothing_accepted(files, capsys):
    contracts, events = files
    assert main(["replay", str(events), "--contracts", str(contracts), "--at", "2020-01-01T00:00:00Z"]) == 3
    assert "after --at" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "replay"])
def test_a_missing_file_is_a_usage_error_everywhere(tmp_path, command, capsys):
    args = [command, str(tmp_path / "missing")]
    if command == "replay":
        args += ["--contracts", str(EXAMPLES)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "missing") in err and err.count("\n") == 1


def test_contracts_default_env_then_examples_then_a_hint(tmp_path, files, monkeypatch, capsys):
    contracts, events = files
    monkeypatch.chdir(tmp_path)  # no examples/contracts.yaml here
    monkeypatch.delenv("SLAMON_CONTRACTS", raising=False)
    assert main(["replay", str(events)]) == 2
    err = capsys.readouterr().err
    assert "error: no contracts file" in err and "hint: pass --contracts FILE or set SLAMON_CONTRACTS" in err
    monkeypatch.setenv("SLAMON_CONTRACTS", str(contracts))
    assert main(["replay", str(events), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pipeline"]["accepted"] == 5
    monkeypatch.setenv("SLAMON_CONTRACTS", str(tmp_path / "nope.yaml"))
    assert main(["replay", str(events)]) == 2
    assert "SLAMON_CONTRACTS" in capsys.readouterr().err
    monkeypatch.delenv("SLAMON_CONTRACTS")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "contracts.yaml").write_text(CONTRACT)
    assert main(["replay", str(events), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pipeline"]["accepted"] == 5


def test_an_internal_error_is_one_line_with_exit_70(monkeypatch, capsys):
    import slamon.commands

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(slamon.commands, "run_validate", boom)
    monkeypatch.delenv("SLAMON_DEBUG", raising=False)
    assert main(["validate", str(EXAMPLES)]) == 70
    err = capsys.readouterr().err
    assert err == "error: internal error: KeyError: 'surprise' (set SLAMON_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("SLAMON_DEBUG", "1")
    assert main(["validate", str(EXAMPLES)]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_and_broken_pipe(monkeypatch, capsys):
    import slamon.commands

    for exc, code in ((KeyboardInterrupt(), 130), (BrokenPipeError(), 0)):
        def raise_it(args, exc=exc):
            raise exc

        monkeypatch.setattr(slamon.commands, "run_validate", raise_it)
        assert main(["validate", str(EXAMPLES)]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_help_lists_the_exit_codes_and_every_option_has_help():
    from slamon.cli import build_parser

    parser = build_parser()
    text = parser.format_help()
    for code in ("0", "1", "2", "3", "4"):
        assert f"\n  {code} " in text
    missing = [f"slamon {name}: {'/'.join(action.option_strings) or action.dest}"
               for name, _sub, action in _all_actions(parser)
               if action.dest != "help" and not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert not missing, "arguments without help (shared options: slamon.inputs.add_contracts_option):\n" + \
        "\n".join(missing)


def test_defaults_are_shown():
    from slamon.cli import build_parser

    helps = {name: sub.format_help() for name, sub, _ in _all_actions(build_parser())}
    assert "(default: 24.0)" in helps["generate"] and "(default: 0)" in helps["generate"]
    assert "SLAMON_CONTRACTS" in helps["replay"] and "(default: table)" in helps["replay"]


def _all_actions(parser, prefix=""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                for sub_action in sub._actions:
                    yield full, sub, sub_action
                yield from _all_actions(sub, full)
