"""The `slamon` command line: validate, replay (file, stdin, formats, --at), generate."""

from __future__ import annotations

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
