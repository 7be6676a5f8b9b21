"""The structure the code promises (README "Layout"): SLA semantics live on the contract classes, and the
core (`monitor/`) imports no adapter. Both are read from the source, so a regression fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monitor.contracts import CALL_KINDS, TICKET_KINDS

ROOT = Path(__file__).resolve().parents[2]
SLA_KINDS = {*TICKET_KINDS, *CALL_KINDS, "uptime", "csat", "accuracy"}
ADAPTERS = ("streams", "alerts", "slamon", "ingest", "deploy", "bench")
# Where an SLA kind's meaning is *defined*: the contract classes, and the measurement of each call SLA.
DEFINED_IN = {"monitor/contracts.py", "monitor/calls.py"}


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {s for elt in node.elts for s in _strings(elt)}
    return set()


def _kind_checks(source: str, name: str = "<source>") -> list[str]:
    """Comparisons of some `.kind` with an SLA kind's name, and of `.method` with "mean"."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        attrs = {s.attr for s in sides if isinstance(s, ast.Attribute)}
        words = set().union(*(_strings(s) for s in sides))
        if ("kind" in attrs and words & SLA_KINDS) or ("method" in attrs and "mean" in words):
            found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_sla_kind_check_outside_the_contract_classes():
    checks = [c for p in _sources("monitor", *ADAPTERS) if str(p.relative_to(ROOT)) not in DEFINED_IN
              for c in _kind_checks(p.read_text(), str(p.relative_to(ROOT)))]
    assert not checks, "ask the contract class (monitor/contracts.py) instead:\n" + "\n".join(checks)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", _sources("monitor"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_adapter(path):
    bad = sorted(m for m in _imports(path) if m.split(".")[0] in ADAPTERS)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the core must not depend on its adapters"


def test_the_checks_catch_what_they_should():
    source = 'if sla.kind in ("asa", "aht") or x.method == "mean" or e.kind == "created":\n    pass\n'
    assert _kind_checks(source) == ["<source>:1: sla.kind in ('asa', 'aht')", "<source>:1: x.method == 'mean'"]


PACKAGES = ("monitor", "streams", "alerts", "slamon", "ingest", "store")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports (at any depth, but not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out |= {n for n in names if n in known}
    return out


def test_no_import_loop():
    paths = [p for p in _sources(*PACKAGES)]
    known = {_module_name(p) for p in paths}
    graph = {_module_name(p): _runtime_imports(p, known) - {_module_name(p)} for p in paths}
    loops, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodule is not a loop
                continue
            if state.get(nxt) == "open":
                loops.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not loops, "import loops:\n" + "\n".join(loops)
