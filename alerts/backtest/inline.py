"""Recording rules inlined into the alerting expressions: one range query per alert, no rule backfill.

Prometheus evaluates a recording rule `record: R, expr: E, labels: L` into series named R carrying the labels of
E's result with L set. A reference `R{matchers}` in another expression is replaced here by exactly that, in
PromQL, so Prometheus computes the same values at every evaluation instant:

    label_replace(label_replace((E'), "__name__", "R", "", ""), "client", "acme", "", "")   # E' itself inlined

* every rule that records R is a producer; a matcher on a label the rule sets (or on `__name__`) is decided
  here, against the rule's own label value, and drops the producers it excludes;
* a matcher on any other label is applied to the producer's result by a `label_replace` test of that label
  and an `and on(...)` / `unless on(...)` against a one-series vector (the same anchored RE2 match);
* several producers are joined with `or` (different label sets: the series the rules record together);
* `R[5m]` becomes the subquery `(...)[5m:STEP]` (STEP the evaluation interval, the instants the rule would
  have recorded at), `R[5m:1m]` keeps its own subquery step;
* a scalar result (`record: R, expr: 0.05`) is wrapped in `vector()` as Prometheus records it.

Not supported (a `BacktestError`, never a silent change): `offset` or `@` after a reference to a recording
rule, a reference inside `absent()` / `absent_over_time()` (its labels come from the selector), a recording
rule name in a string (`{__name__="R"}`), and rules that read each other in a cycle.

Unlike backfilled recordings (which carry no staleness markers and stay visible for the lookback delta after
a rule stopped returning a series), an inlined series disappears at the first evaluation without it, as it
does in a live Prometheus.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

from alerts.backtest import BacktestError

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[a-zA-Z0-9_]*")
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
MATCH_LABEL = "__backtest_match"
_ONE = f'label_replace(vector(1), "{MATCH_LABEL}", "1", "", "")'
EMPTY = "(vector(0) < 0)"  # an instant vector without series


def quote(text: str) -> str:
    """A PromQL double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _unquote(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _string_end(text: str, i: int) -> int:
    """Index after the string literal starting at text[i]."""
    q = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\" and q != "`":
            j += 2
            continue
        if text[j] == q:
            return j + 1
        j += 1
    raise BacktestError(f"unterminated string in {text!r}")


def _group_end(text: str, i: int, open_: str, close: str) -> int:
    """Index after the bracket group opening at text[i] (strings skipped)."""
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c in "\"'`":
            j = _string_end(text, j)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise BacktestError(f"unbalanced {open_!r} in {text!r}")


def parse_matchers(body: str) -> list[tuple[str, str, str]]:
    """`a="x", b=~"y"` -> [(label, op, value)]."""
    out, i = [], 0
    while i < len(body):
        if body[i] in " \t\n,":
            i += 1
            continue
        m = _MATCHER.match(body, i)
        if not m or m.end() >= len(body) or body[m.end()] not in "\"'`":
            raise BacktestError(f"cannot read the label matchers {{{body}}}")
        end = _string_end(body, m.end())
        raw = body[m.end() + 1 : end - 1]
        out.append((m.group(1), m.group(2), raw if body[m.end()] == "`" else _unquote(raw)))
        i = end
    return out


def matches(op: str, pattern: str, value: str) -> bool:
    """A Prometheus label matcher (regexes anchored) on a known value."""
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value) is not None
    return hit if op == "=~" else not hit


def _filter(expr: str, label: str, op: str, pattern: str) -> str:
    """`expr` keeping the series whose `label` passes the matcher (evaluated by Prometheus)."""
    regex = re.escape(pattern) if op in ("=", "!=") else pattern
    tagged = f'label_replace({expr}, {quote(MATCH_LABEL)}, "1", {quote(label)}, {quote(regex)})'
    setop = "and" if op in ("=", "=~") else "unless"
    return f'label_replace(({tagged} {setop} on({MATCH_LABEL}) {_ONE}), {quote(MATCH_LABEL)}, "", "", "")'


class Inliner:
    """Inlines the recording rules of `files` (rule file name -> parsed YAML) into expressions.

    step_s: the evaluation interval (the step of the subqueries that replace a range over a recording).
    result_type: expr -> "vector" | "scalar" | ... (an instant query); None: every rule returns a vector."""

    def __init__(self, files: dict[str, dict], step_s: int, result_type: Callable[[str], str] | None = None) -> None:
        self.step_s = step_s
        self.result_type = result_type
        self.producers: dict[str, list[dict]] = defaultdict(list)
        for content in files.values():
            for group in content.get("groups", []):
                for rule in group["rules"]:
                    if "record" in rule:
                        self.producers[rule["record"]].append(rule)
        self._done: dict[int, str] = {}

    def alerts(self, files: dict[str, dict]) -> list[dict]:
        """The alerting rules of `files`, each with `expr` inlined (and `source_expr` the original)."""
        out = []
        for content in files.values():
            for group in content.get("groups", []):
                for rule in group["rules"]:
                    if "alert" in rule:
                        out.append({**rule, "source_expr": rule["expr"], "expr": self.expr(rule["expr"])})
        return out

    def expr(self, text: str, stack: tuple[str, ...] = ()) -> str:
        if not self.producers:
            return text
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c in "\"'`":
                end = _string_end(text, i)
                literal = text[i:end]
                if any(name in literal for name in self.producers):
                    raise BacktestError(f"a recording rule's name in a string cannot be inlined: {text!r}")
                out.append(literal)
                i = end
            elif c == "#":
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif c == "{":  # matchers of a selector that is not a recording
                end = _group_end(text, i, "{", "}")
                if any(name in text[i:end] for name in self.producers):
                    raise BacktestError(f"a recording rule's name in a selector's matchers cannot be inlined: {text!r}")
                out.append(text[i:end])
                i = end
            elif c == "[":
                end = _group_end(text, i, "[", "]")
                out.append(text[i:end])
                i = end
            elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
                m = _NUMBER.match(text, i)
                out.append(m.group(0))
                i = m.end()
            elif c.isalpha() or c in "_:":
                m = _IDENT.match(text, i)
                name = m.group(0)
                i = m.end()
                if name in _LABEL_LISTS:
                    out.append(name)
                    j = i
                    while j < n and text[j].isspace():
                        j += 1
                    if j < n and text[j] == "(":
                        end = _group_end(text, j, "(", ")")
                        out.append(text[i:end])
                        i = end
                    continue
                j = i
                while j < n and text[j].isspace():
                    j += 1
                if name not in self.producers or (j < n and text[j] == "("):
                    out.append(name)
                    continue
                before = "".join(out).rstrip()
                if re.search(r"\babsent(_over_time)?\s*\(\s*$", before):
                    raise BacktestError(
                        f"{name} inside absent(): its labels come from the selector, "
                        f"which an inlined expression does not have: {text!r}"
                    )
                matchers: list[tuple[str, str, str]] = []
                if j < n and text[j] == "{":
                    end = _group_end(text, j, "{", "}")
                    matchers = parse_matchers(text[j + 1 : end - 1])
                    i = end
                    j = i
                    while j < n and text[j].isspace():
                        j += 1
                replaced = self.reference(name, matchers, stack)
                if j < n and text[j] == "[":
                    end = _group_end(text, j, "[", "]")
                    window = text[j + 1 : end - 1].strip()
                    replaced += f"[{window}]" if ":" in window else f"[{window}:{self.step_s}s]"
                    i = end
                    j = i
                    while j < n and text[j].isspace():
                        j += 1
                if re.match(r"(offset\b|@)", text[j:]):
                    raise BacktestError(f"offset / @ after the recording rule {name} cannot be inlined: {text!r}")
                out.append(replaced)
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def reference(self, name: str, matchers: list[tuple[str, str, str]], stack: tuple[str, ...]) -> str:
        """`name{matchers}` as an expression over the raw series."""
        if name in stack:
            raise BacktestError("recording rules read each other in a cycle: " + " -> ".join((*stack, name)))
        parts = []
        for rule in self.producers[name]:
            labels = {k: str(v) for k, v in (rule.get("labels") or {}).items()}
            dynamic = []
            keep = True
            for label, op, pattern in matchers:
                if label == "__name__" or label in labels:
                    keep = matches(op, pattern, name if label == "__name__" else labels[label])
                    if not keep:
                        break
                else:
                    dynamic.append((label, op, pattern))
            if not keep:
                continue
            part = self.produced(rule, (*stack, name))
            for label, op, pattern in dynamic:
                part = _filter(part, label, op, pattern)
            parts.append(part)
        if not parts:
            return EMPTY
        return "(" + " or ".join(parts) + ")"

    def produced(self, rule: dict, stack: tuple[str, ...]) -> str:
        """The series the recording rule records: its expression inlined, named, its labels set."""
        done = self._done.get(id(rule))
        if done is not None:
            return done
        inner = self.expr(str(rule["expr"]), stack)
        kind = self.result_type(inner) if self.result_type is not None else "vector"
        if kind == "scalar":
            inner = f"vector({inner})"
        elif kind != "vector":
            raise BacktestError(f"recording rule {rule['record']} returns a {kind}, not a vector")
        out = f'label_replace(({inner}), "__name__", {quote(rule["record"])}, "", "")'
        for key, value in (rule.get("labels") or {}).items():
            out = f'label_replace({out}, {quote(str(key))}, {quote(str(value).replace("$", "$$"))}, "", "")'
        self._done[id(rule)] = out
        return out
