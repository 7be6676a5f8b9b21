"""Bad input on the command line gives a message and a documented exit code, never a traceback.

Every subcommand is found in the parser (`slamon.cli.build_parser`), so a new command is covered without
editing this file: a missing file (and a directory) for each file argument, run in a subprocess; `--help`, an
unknown flag, missing required arguments and a bad value for each typed option, checked in process (argparse
exits before the command runs). `_cases` adds each command's own bad input (garbage, wrong values, a broker,
Grafana, Prometheus or Chromium that is not there). Each subprocess runs `python -m slamon` with a timeout (nothing
may hang), from a directory without examples/contracts.yaml and with no SLAMON_* variable but a Kafka address
where nothing listens.

Exit codes (README "Exit codes"): 2 usage/input error, 3 nothing accepted, 4 a service is unavailable.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from slamon.cli import build_parser
from slamon.inputs import DefaultContracts
from tests.builders import ticket

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = str(ROOT / "examples" / "contracts.yaml")
TIMEOUT = 90  # seconds per command: a hang fails the case
USAGE, NOTHING, UNAVAILABLE = 2, 3, 4


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: int | tuple[int, ...]
    stdin: bytes = b""
    env: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()  # stderr must contain each (case-insensitive)

    @property
    def id(self) -> str:
        text = " ".join(a.replace(str(ROOT), "ROOT") for a in self.argv)
        text = text.replace(str(FILES.base), "T") if FILES.base else text
        return (text + (" <stdin" if self.stdin else "") + "".join(f" {k}={v}" for k, v in self.env))[:150]


@dataclass
class Files:
    base: Path | None = None
    paths: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.paths[name]
        except KeyError:
            raise AttributeError(name) from None


FILES = Files()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_files(base: Path) -> None:
    FILES.base = base
    events = [ticket("2026-11-02T09:00:00Z", "T1", "created", priority="P1", client="acme-retail"),
              ticket("2026-11-02T09:20:00Z", "T1", "agent_reply", client="acme-retail")]
    files = {
        "events": b"\n".join(orjson.dumps(e) for e in events) + b"\n",
        "garbage": b"garbage\nmore garbage\n",
        "binary": bytes(range(256)) * 4,
        "empty": b"",
        "badyaml": b"clients: [unclosed\n  - {\n",
        "notcontracts": b"just: a mapping\n",
        "badalerting": b"imminent: {within: 45m}\n",
        "badcsv": b"a,b\n1,2\n",
        "token": b"tok\n",
        "emptytoken": b"\n",
        "file": b"x\n",
    }
    for name, data in files.items():
        path = base / name
        path.write_bytes(data)
        FILES.paths[name] = str(path)
    for name in ("dir", "dashboards"):
        (base / name).mkdir()
        FILES.paths[name] = str(base / name)
    (base / "dashboards" / "d.json").write_text('{"uid": "x", "title": "x"}')
    FILES.paths["missing"] = str(base / "no-such-file")
    FILES.paths["out"] = str(base / "out")
    FILES.paths["workdir"] = str(base / "cwd")
    (base / "cwd").mkdir()
    FILES.paths["broker"] = f"127.0.0.1:{_closed_port()}"
    FILES.paths["http"] = f"http://127.0.0.1:{_closed_port()}"


def _cases() -> list[Case]:
    """Each command's own bad input; a missing file or a directory for each file argument comes from
    `_file_cases` (found in the parser)."""
    f = FILES
    c = ("--contracts", CONTRACTS)
    kafka = (("SLAMON_CONTRACTS", CONTRACTS),)
    no_prometheus = (("SLAMON_PROMETHEUS_BIN", "slamon-no-such-prometheus"),
                     ("SLAMON_PROMTOOL_BIN", "slamon-no-such-promtool"))
    return [
        Case(("validate", f.garbage), USAGE),
        Case(("validate", f.binary), USAGE, words=("utf-8",)),
        Case(("validate", f.badyaml), USAGE, words=("badyaml:2:", "yaml")),
        Case(("validate", f.notcontracts), USAGE, words=("clients",)),
        Case(("replay", f.garbage, *c), NOTHING, words=("no event accepted", "malformed")),
        Case(("replay", f.empty, *c), NOTHING, words=("empty",)),
        Case(("replay", "-", *c), NOTHING, stdin=b"garbage\n"),
        Case(("replay", f.events, *c, "--at", "2020-01-01T00:00:00Z"), NOTHING, words=("after --at",)),
        Case(("replay", f.events), USAGE, words=("--contracts FILE", "SLAMON_CONTRACTS")),
        Case(("replay", f.events), USAGE, env=(("SLAMON_CONTRACTS", f.missing),)),
        Case(("import", "bpic2013", f.garbage), USAGE),
        Case(("import", "bpic2013", f.binary), USAGE),
        Case(("import", "bpic2013", f.badcsv), USAGE, words=("columns",)),
        Case(("generate", *c, "--hours", "-3"), USAGE, words=("--hours",)),
        Case(("generate", *c, "--hours", "1e9"), USAGE, words=("2100",)),
        Case(("generate", *c, "--scenario", "outage:globex-bank:1h:1h:1:nosuch"), USAGE, words=("nosuch",)),
        Case(("generate", *c, "--scenario", "nonsense"), USAGE, words=("--scenario",)),
        Case(("generate", *c, "--hours", "1", "-o", f.dir), USAGE, words=("directory",)),
        Case(("generate", "--hours", "1"), USAGE, words=("SLAMON_CONTRACTS",)),
        # worker / produce / topics: nothing listens at SLAMON_KAFKA__BOOTSTRAP_SERVERS
        Case(("worker", "--wait", "0.5"), UNAVAILABLE, env=kafka, words=("kafka", f.broker)),
        Case(("worker", "--config", f.garbage), USAGE),
        Case(("worker", "--config", f.badyaml), USAGE),
        Case(("worker", "--wait", "0.5"), USAGE, env=(("SLAMON_CONTRACTS", f.garbage),)),
        Case(("produce", f.events, "--wait", "0.5"), UNAVAILABLE, env=kafka, words=("kafka",)),
        Case(("produce", "--generate", "1", "--wait", "0.5"), UNAVAILABLE, env=kafka),
        Case(("produce",), USAGE),
        Case(("topics", "create", "--wait", "0.5"), UNAVAILABLE, env=kafka),
        Case(("topics", "describe", "--wait", "0.5"), UNAVAILABLE, env=kafka),
        # alerting
        Case(("rules", f.garbage, "-o", f.out), USAGE),
        Case(("rules", CONTRACTS, "-o", f.file), USAGE),
        Case(("rules", CONTRACTS, "-o", f.out, "--alerting", f.badalerting), USAGE,
             words=("badalerting:1: imminent.within",)),
        Case(("alertmanager", "-o", f.dir), USAGE),
        Case(("alertmanager", "-o", f.out, "--alerting", f.badyaml), USAGE),
        Case(("dashboards", "-o", f.file), USAGE),
        Case(("grafana", "push", f.dashboards, "--url", f.http, "--token-file", f.token), UNAVAILABLE,
             words=("grafana",)),
        Case(("grafana", "push", f.dashboards, "--url", f.http, "--token-file", f.emptytoken), USAGE),
        Case(("grafana", "push", f.dashboards, "--url", "notaurl", "--token-file", f.token), USAGE),
        # report
        Case(("report", f.events, *c, "--period", "Nov"), USAGE, words=("2026-11",)),
        Case(("report", f.garbage, *c, "--period", "2026-11"), NOTHING),
        Case(("report", f.events, *c, "--period", "2026-11", "--client", "nobody"), USAGE, words=("nobody",)),
        Case(("report", f.events, *c, "--period", "2026-11", "-o", f.dir), USAGE),
        Case(("report", f.events, *c, "--period", "2026-11", "--format", "pdf", "-o", f.out), UNAVAILABLE,
             env=(("SLAMON_CHROMIUM", f.missing),), words=("chromium",)),
        Case(("report", f.events, *c, "--period", "2026-11", "--commentary", f.missing), USAGE,
             words=("commentary file", "no such file")),
        Case(("report", f.events, *c, "--period", "2026-11", "--commentary", f.dir), USAGE,
             words=("commentary file", "directory")),
        Case(("report", f.events, *c, "--period", "2026-11", "--commentary", f.binary), USAGE, words=("utf-8",)),
        Case(("report", "--store", f.out, *c, "--period", "2026-11", "--commentary", f.missing), USAGE,
             words=("commentary file",)),
        # backtest
        Case(("backtest", f.garbage, *c), (USAGE, NOTHING)),
        Case(("backtest", f.events, *c, "--step", "0s"), USAGE),
        Case(("backtest", f.events, *c, "--alerting", f.badalerting), USAGE),
        Case(("backtest", f.events, *c), UNAVAILABLE, env=no_prometheus),
    ]


# --- cases found in the parser: every command, every typed option, every file argument ----------------------

FILE_DESTS = {"contracts", "config", "alerting", "compare", "token_file", "events", "path", "directory"}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(words, leaf parser) of every runnable subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from _commands(sub, (*prefix, name))
                else:
                    yield (*prefix, name), sub


def _file_cases() -> list[Case]:
    """A missing file for every file argument of every command (and a directory, or a file where a directory
    is expected, for positional ones), the other required arguments valid."""
    cases = []
    for words, sub in _commands(build_parser()):
        for action in sub._actions:
            if action.dest not in FILE_DESTS:
                continue
            bad = [FILES.missing]
            if not action.option_strings:
                bad.append(FILES.file if action.dest == "directory" else FILES.dir)
            for value in bad:
                argv = _baseline(words, sub, action, value)
                if argv is not None:
                    cases.append(Case(argv, USAGE))
    return cases


def _baseline(words, sub, bad_action, bad: str) -> tuple[str, ...] | None:
    """`words` with every required argument filled with something valid, and `bad_action` given `bad`."""
    argv = list(words)
    for action in sub._actions:
        if action is bad_action:
            value = bad
        elif action.required or (not action.option_strings and action.nargs in (None, "?")):
            value = _valid(action)
            if value is None:
                return None
        else:
            continue
        if action.option_strings:
            argv += [action.option_strings[-1], value]
        else:
            argv.append(value)
    if bad_action.dest != "contracts" and any(isinstance(a.default, DefaultContracts) for a in sub._actions):
        argv += ["--contracts", CONTRACTS]
    return tuple(argv)


def _valid(action: argparse.Action) -> str | None:
    if action.choices:
        return next(iter(action.choices))
    return {"events": FILES.events, "contracts": CONTRACTS, "path": FILES.badcsv, "directory": FILES.dashboards,
            "output": FILES.out, "period": "2026-11", "url": FILES.http, "token_file": FILES.token}.get(action.dest)


# --- running them ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    _make_files(tmp_path_factory.mktemp("bad-input"))
    cases = list(dict.fromkeys(_cases() + _file_cases()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
    env.update(PYTHONPATH=str(ROOT), SLAMON_KAFKA__BOOTSTRAP_SERVERS=FILES.broker,
               SLAMON_KAFKA__REQUEST_TIMEOUT_SECONDS="2", SLAMON_PROGRESS="0")

    def run(case: Case):
        try:
            proc = subprocess.run([sys.executable, "-m", "slamon", *case.argv], input=case.stdin,
                                  capture_output=True, timeout=TIMEOUT, cwd=FILES.workdir,
                                  env={**env, **dict(case.env)})
        except subprocess.TimeoutExpired:
            return None, "", f"timed out after {TIMEOUT}s"
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cases, pool.map(run, cases), strict=True))


def test_every_case_gives_a_message_and_its_exit_code(results):
    failures = []
    for case, (code, out, err) in results.items():
        expected = case.code if isinstance(case.code, tuple) else (case.code,)
        problems = []
        if code not in expected:
            problems.append(f"exit {code}, expected {case.code}")
        if "Traceback" in out + err:
            problems.append("traceback")
        if code not in (0, None) and not any(line.startswith(("error:", "usage:")) for line in err.splitlines()):
            problems.append("no 'error:' line on stderr")
        problems += [f"stderr lacks {w!r}" for w in case.words if w.lower() not in err.lower()]
        if problems:
            failures.append(f"slamon {case.id}: {'; '.join(problems)}\n    stderr: {err.strip()[-600:]}")
    assert not failures, f"{len(failures)} of {len(results)} cases:\n" + "\n".join(failures)


# --- parser-level errors, in process (argparse exits before any command runs) ----------------------------------


def _parser_cases():
    for words, sub in _commands(build_parser()):
        yield (*words, "--no-such-flag"), 2
        yield (*words, "--help"), 0
        if any(a.required for a in sub._actions):
            yield words, 2
        for action in sub._actions:
            flag = action.option_strings[-1] if action.option_strings else None
            if flag and action.type is not None and action.nargs is None:
                yield (*words, flag, "not-a-value!"), 2


def test_parser_errors_of_every_command(capsys):
    failures = []
    for argv, code in _parser_cases():
        try:
            build_parser().parse_args(list(argv))
            failures.append(f"slamon {' '.join(argv)}: parsed")
            continue
        except SystemExit as exit_:
            got = exit_.code
        except Exception as err:  # a type function that raised something argparse does not expect
            failures.append(f"slamon {' '.join(argv)}: {type(err).__name__}: {err}")
            continue
        out, err = capsys.readouterr()
        if got != code:
            failures.append(f"slamon {' '.join(argv)}: exit {got}, expected {code}: {err.strip()[-300:]}")
        elif code == 0 and "usage: slamon" not in out:
            failures.append(f"slamon {' '.join(argv)}: no usage")
        elif code == 2 and "error:" not in err:
            failures.append(f"slamon {' '.join(argv)}: no message")
        elif argv[-1] == "not-a-value!" and argv[-2] not in err:
            failures.append(f"slamon {' '.join(argv)}: the message does not name {argv[-2]}: {err.strip()}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("argv", [
    ("generate", "--hours", "0"), ("generate", "--hours", "nan"), ("generate", "--breach-rate", "2"),
    ("generate", "--disorder", "soon"), ("generate", "--start", "yesterday"), ("generate", "--seed", "x"),
    ("replay", "x", "--at", "2026-11-02T10:00:00"), ("replay", "x", "--at", "1969-12-31T00:00:00Z"),
    ("replay", "x", "--format", "xml"), ("produce", "--generate", "-1"), ("produce", "x", "--rate", "0"),
    ("worker", "--wait", "-1"), ("topics", "delete"), ("report", "x", "--period", "2026-11", "--trend", "0"),
    ("import", "nosuch", "x"),
])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(list(argv))
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["outage:nobody:1h:1h", "outage:globex-bank:soon:1h", "meteor:globex-bank:1h:1h",
                                  "outage:globex-bank:1h:-1h", "staffing_drop:globex-bank:1h:1h:-2",
                                  "outage:globex-bank:2026-11-02T09:00:00Z", "a:b:c:d:e:f:g"])
def test_bad_scenarios_are_input_errors(spec):
    from monitor.contracts import load_contracts
    from slamon.generator_cli import parse_scenario
    from slamon.inputs import InputError

    with pytest.raises(InputError, match="--scenario"):
        parse_scenario(spec, 0, load_contracts(CONTRACTS))
