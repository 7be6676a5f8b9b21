"""Bad-input suite for the contract loader (`monitor.contracts.parse_contracts` / `load_contracts`).

Whatever the text, the loader either returns `Contracts` or raises `ContractError` (never another exception),
every message line names `file:line:`, validation errors name the field path, YAML tags are never executed,
and alias bombs ("billion laughs", recursive aliases, merge-key bombs) are refused quickly in bounded memory.

Inputs: line/character mutations of the example contracts, structural mutations (a field replaced by a wrong
type, a huge number, NaN/inf, or deleted), python tags spliced in anywhere, deep nesting, huge numbers.
Examples per test: SLAMON_FUZZ_EXAMPLES (default: a few hundred, a few seconds in CI).
"""

from __future__ import annotations

import copy
import os
import re
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    ContractError,
    Contracts,
    load_contracts,
    parse_contracts,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {name: (ROOT / "examples" / name).read_text() for name in ("contracts.yaml", "bpic2013-contracts.yaml")}
SOURCE = "fuzz.yaml"
MESSAGE_LINE = re.compile(rf"^{re.escape(SOURCE)}(:(\d+))?: \S")
EXAMPLES_PER_TEST = int(os.environ.get("SLAMON_FUZZ_EXAMPLES", "0")) or 100
FUZZ = settings(max_examples=EXAMPLES_PER_TEST, deadline=None, derandomize="SLAMON_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TRIED = {"contracts": 0}

# Fragments that break YAML or the schema in interesting ways; python tags must never run (MARKER).
MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"slamon-fuzz-tag-executed-{os.getpid()}"
TAGS = [
    f"!!python/object/apply:os.system ['touch {MARKER}']",
    f"!!python/object/new:subprocess.check_output [['touch', '{MARKER}']]",
    "!!python/name:os.system", "!!python/module:os", "!!python/object:builtins.dict {}",
    f"!!python/object/apply:builtins.exec ['open(\"{MARKER}\", \"w\")']",
]
FRAGMENTS = [
    ":", "- ", "? ", "&a ", "*a", "*undefined", "<<: *a", "[", "]", "{", "}", "\t", "'", '"', "#", "|", ">", "---",
    "...", "%YAML 1.1", "!!binary x", "!!timestamp x", "!!int x", "!!set {a}", "~", "null", ".nan", ".inf", "-.inf",
    "1e400", "9" * 5000, str(2**70), "-1", "0", "99999999999d", "2026-02-30", "2026-13-01T00:00:00Z", "\x00", "\x85",
    "\ufeff", "\u2028", "é", "💥", "x" * 10_000, *TAGS,
]
WRONG_VALUES = [
    None, True, 0, -1, 2**70, -(2**70), 1e308, float("nan"), float("inf"), -0.0, "", "x" * 10_000, "💥",
    "1e400", "99999999999d", [], [1, [2, [3]]], {}, {"a": {"b": None}}, "2026-02-30", "__init__", "../../etc/passwd",
]


def _assert_contract_error(err: ContractError, text: str) -> None:
    message = str(err)
    assert message, "empty ContractError"
    n_lines = text.count("\n") + 2
    for line in message.splitlines():
        m = MESSAGE_LINE.match(line)
        assert m, f"message line does not name the file: {line!r}"
        if m.group(2):
            assert 1 <= int(m.group(2)) <= n_lines, line
    assert len(message) < 20_000, "message is bounded"


def _load(text: str) -> Contracts | ContractError:
    """The loader's result; any exception but ContractError fails the test (with its traceback)."""
    TRIED["contracts"] += 1
    try:
        return parse_contracts(text, SOURCE)
    except ContractError as err:
        _assert_contract_error(err, text)
        return err


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    MARKER.unlink(missing_ok=True)
    yield
    print(f"\nfuzz: {TRIED['contracts']} contract texts tried")
    assert not MARKER.exists(), "a YAML python tag was executed"


# --- text mutations ---------------------------------------------------------------------------------------


@st.composite
def mutated_text(draw) -> str:
    text = draw(st.sampled_from(sorted(EXAMPLES.values())))  # the big one parses in ~80 ms
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "insert", "indent", "replace"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate" and lines:
            lines = [*lines[:i], lines[i][: draw(st.integers(0, len(lines[i])))]]
        elif op == "indent" and lines:
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t", "      "])) + lines[i].lstrip(" ")
        elif lines:
            fragment = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=20))
            at = draw(st.integers(0, len(lines[i])))
            end = at if op == "insert" else draw(st.integers(at, len(lines[i])))
            lines[i] = lines[i][:at] + fragment + lines[i][end:]
    return "".join(lines)


@pytest.mark.slow
@FUZZ
@given(mutated_text())
def test_mutated_text_gives_contracts_or_contract_error(text):
    _load(text)


@pytest.mark.slow
@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")))
def test_arbitrary_text_gives_contracts_or_contract_error(text):
    _load(text)


# --- structural mutations ----------------------------------------------------------------------------------


def _paths(node, prefix=()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


EXAMPLE_DATA = {name: yaml.safe_load(text) for name, text in EXAMPLES.items()}
EXAMPLE_PATHS = {name: _paths(data) for name, data in EXAMPLE_DATA.items()}


@st.composite
def mutated_document(draw) -> tuple[str, tuple, bool]:
    """(YAML text, the mutated path, deleted?) with one field replaced by a wrong value or deleted."""
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    data = copy.deepcopy(EXAMPLE_DATA[name])
    path = draw(st.sampled_from(EXAMPLE_PATHS[name]))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    deleted = draw(st.booleans()) and isinstance(parent, dict)
    if deleted:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(WRONG_VALUES) | st.integers() | st.floats() | st.text(max_size=30))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), path, deleted


@pytest.mark.slow
@FUZZ
@given(mutated_document())
def test_wrong_field_names_file_line_and_path(case):
    text, path, _deleted = case
    result = _load(text)
    if isinstance(result, Contracts) or "not valid YAML" in str(result):
        return  # still valid (an optional field, or a value of the right type), or refused by the YAML layer
    mutated = ".".join(str(p) for p in path)
    named = [line.split(": ", 2)[1] for line in str(result).splitlines() if line.count(": ") >= 2]
    # the error names the field, its parent (missing field, union member chosen by `kind`), or a field below it
    assert any(mutated.startswith(p) or p.startswith(mutated) for p in named), (mutated, str(result))


# --- tags, bombs, nesting, numbers --------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(sorted(EXAMPLES.values())), st.sampled_from(TAGS), st.data())
def test_python_tags_are_never_executed(text, tag, data):
    lines = text.splitlines(keepends=True)
    i = data.draw(st.sampled_from([n for n, line in enumerate(lines) if line.strip() and line.strip()[0] != "#"]))
    if ": " in lines[i].split("#")[0]:  # as a value, where a loader would construct it
        key, _ = lines[i].split(": ", 1)
        lines[i] = f"{key}: {tag}\n"
    else:
        lines.insert(i, f"x{i}: {tag}\n")
    result = _load("".join(lines))
    assert isinstance(result, ContractError)
    assert not MARKER.exists(), f"tag executed: {tag}"


def _laughs(levels: int, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines)


BOMBS = {
    "billion laughs (lists)": _laughs(10) + "\nclients: *a9\n",
    "billion laughs in a field": _laughs(10) + "\nclients:\n  acme:\n    timezone: UTC\n"
                                 "    slas: [{name: x, kind: accuracy, target: 0.9, stages: *a9}]\n",
    "billion laughs (maps)": "m0: &m0 {k: v}\n" + "\n".join(
        f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(9)) + "}" for i in range(1, 10))
    + "\nclients: *m9\n",
    "merge-key bomb": "b0: &b0 {k: 1}\n" + "\n".join(
        f"b{i}: &b{i} {{<<: [" + ", ".join([f"*b{i - 1}"] * 9) + "]}" for i in range(1, 12)) + "\nclients: *b11\n",
    "recursive alias": "a: &a [*a]\nclients: {x: *a}\n",
    "recursive map": "a: &a {b: *a}\nclients: *a\n",
    "deep alias chain": "\n".join(f"a{i}: &a{i} " + "[" * 60 + (f"*a{i - 1}" if i else "1") + "]" * 60
                                  for i in range(40)) + "\nclients: *a39\n",
    "deep flow nesting": "clients: " + "[" * 10_000 + "]" * 10_000,
    "deep block nesting": "clients:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 2000)),
    "deep map nesting": "clients: " + "{a: " * 10_000 + "1" + "}" * 10_000,
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_alias_bombs_and_deep_nesting_are_refused_quickly(name):
    text = BOMBS[name]
    started = time.perf_counter()
    result = _load(text)
    elapsed = time.perf_counter() - started
    assert isinstance(result, ContractError)
    assert re.search(r"alias|nested deeper", str(result)), str(result)
    assert elapsed < 2, f"{name}: {elapsed:.2f}s"  # milliseconds unloaded
    tracemalloc.start()
    try:
        _load(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{name}: {peak / 2**20:.0f} MiB"


def test_limits_leave_room_for_real_contracts():
    many = "clients:\n" + "".join(
        f"  c{i}:\n    timezone: UTC\n    slas:\n"
        f"      - {{name: a, kind: accuracy, target: 0.9, stages: &s{i} [0.5]}}\n"
        f"      - {{name: b, kind: csat, target: 0.8, stages: *s{i}}}\n" for i in range(500))
    assert len(parse_contracts(many, SOURCE).clients) == 500
    assert MAX_YAML_NODES >= 100_000 and MAX_YAML_DEPTH >= 32


NUMBERS = ["9" * 5000, "1e400", ".nan", ".inf", "-.inf", str(2**70), "-" + str(2**70), "1e308", "0x" + "f" * 100,
           "1.0e+308", "'" + "9" * 400 + "s'",
           "99999999999d", "2026-02-30", "[]", "{}"]
NON_FINITE = {".nan", ".inf", "-.inf", "1e400", "9" * 5000}
NUMBER_FIELDS = ["allowed_lateness: {v}", "    allowed_lateness: {v}", "      - {{name: x, kind: asa, target: {v}}}",
                 "      - {{name: x, kind: uptime, service: s, target: {v}}}",
                 "      - {{name: x, kind: first_response, objective: 0.9, target: {{P1: {v}}}}}",
                 "      - {{name: x, kind: accuracy, target: 0.9, period: {{rolling: {v}}}}}",
                 "      - {{name: x, kind: asa, target: 30, penalty: {{monthly_fee: {v}, currency: EUR, "
                 "tiers: [{{above: {v}, credit_percent: {v}}}]}}}}",
                 "      - {{name: x, kind: asa, target: 30, penalty: {{monthly_fee: {v}, currency: EUR, "
                 "tiers: [{{above: 60, credit_percent: 5}}]}}}}",
                 "      - {{name: x, kind: aht, target: 30, penalty: {{monthly_fee: 1, currency: EUR, "
                 "tiers: [{{above: {v}, credit_percent: 5}}]}}}}"]


@pytest.mark.parametrize("field,value", [(f, v) for f in range(len(NUMBER_FIELDS)) for v in NUMBERS
                                         if f < 7 or v in NON_FINITE])  # fees and tier levels: any finite number
def test_huge_and_non_finite_numbers_are_refused_with_their_line(field, value):
    line = NUMBER_FIELDS[field].format(v=value)
    body = ["clients:", "  acme:", "    timezone: UTC", "    slas:", "      - {name: ok, kind: aht, target: 300}"]
    text = "\n".join([line, *body] if not line.startswith(" ") else
                     [*body[:3], line, *body[3:]] if line.startswith("    a") else [*body, line]) + "\n"
    result = _load(text)
    assert isinstance(result, ContractError), (text, result)
    at = next(i for i, t in enumerate(text.splitlines(), 1) if t == line)
    assert f"{SOURCE}:{at}:" in str(result), (text, str(result))


def test_unreadable_files_are_contract_errors(tmp_path):
    bad_utf8 = tmp_path / "latin1.yaml"
    bad_utf8.write_bytes(b"clients:\n  caf\xe9:\n    timezone: UTC\n")
    with pytest.raises(ContractError, match=r"latin1.yaml:2: not UTF-8"):
        load_contracts(bad_utf8)
    with pytest.raises(ContractError, match="cannot read"):
        load_contracts(tmp_path)  # a directory
    with pytest.raises(ContractError, match="cannot read"):
        load_contracts(tmp_path / "missing.yaml")
