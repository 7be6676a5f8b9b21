"""The generated rules against the real promtool: `check rules`, and `test rules` unit tests generated for
EVERY alert instance of examples/contracts.yaml + examples/alerting.yaml.

For each alert rule the harness writes a rule file holding the rule's recording rules and that one alert,
and test cases with input series built from the rule's model (`alerts.rules.Alert.conds` / `.ratio`):

  fires      the condition holds (for burn rates: once per tier, at an error ratio just above the
             tier's threshold), checked at the first minute the alert must fire, with exact labels and
             rendered annotations (live value included);
  silent     the main condition does not hold;
  gate       the main condition holds but the minimum-volume gate is closed (burn rates and call
             windows: ONE bad item in a quiet queue; projections/penalties: too little volume);
  pending    the condition holds for less than `for:` (then fires once it has held long enough);
  recovery   burn rates: a burst fires, and clean traffic afterwards clears it (short window).

Expected outcomes come from a small oracle that evaluates the rule's model minute by minute with
Prometheus' semantics (aligned windows: increase() is exact), and every case asserts its intent
(a "fires" case must fire in the oracle, a "gate" case must fire without the gate), so no case is vacuous.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alerts.config import load_alerting
from alerts.rules import Alert, Cond, Group, dump_yaml, plan, write_rules
from monitor.contracts import load_contracts

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "examples" / "contracts.yaml"
ALERTING = ROOT / "examples" / "alerting.yaml"
PROMTOOL = shutil.which("promtool")
MAX_MINUTES = 24 * 60


def _need_promtool():
    if PROMTOOL is None:
        import os

        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("promtool not installed (apt-get install prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")


@pytest.fixture(scope="module")
def groups() -> list[Group]:
    return plan(load_contracts(CONTRACTS), load_alerting(ALERTING, env={}))


# --- Go template subset (Prometheus alert templates) -------------------------------------------------------


def _g4(v: float) -> str:
    """Go's %.4g."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = f"{v:.4g}"
    m = re.match(r"^(-?[\d.]+)e([+-])(\d+)$", text)
    if m:  # Go prints at least two exponent digits, like C
        text = f"{m.group(1)}e{m.group(2)}{int(m.group(3)):02d}"
    return text


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


_FUNCS = {"humanize": humanize, "humanizePercentage": humanize_percentage, "humanizeDuration": humanize_duration}
_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def render(template: str, labels: dict[str, str], value: float) -> str:
    def one(m: re.Match) -> str:
        expr = m.group(1)
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels."):], "<no value>")
        head, *pipes = [p.strip() for p in expr.split("|")]
        assert head == "$value", f"template action not emulated: {expr}"
        if not pipes:
            return _g4(value) if value != int(value) else str(int(value))
        assert len(pipes) == 1 and pipes[0] in _FUNCS, f"template function not emulated: {expr}"
        return _FUNCS[pipes[0]](value)

    return _ACTION.sub(one, template)


def test_template_emulation():
    assert humanize(14.4) == "14.4" and humanize(1234) == "1.234k" and humanize(0.0123) == "12.3m"
    assert humanize_percentage(0.95) == "95%" and humanize_percentage(0.12345) == "12.35%"
    assert humanize_duration(3725) == "1h 2m 5s" and humanize_duration(42) == "42s"
    assert humanize_duration(90061) == "1d 1h 1m 1s"


# --- scenarios --------------------------------------------------------------------------------------------

Series = dict[str, list[float | None]]  # series text -> value per minute (None: no sample)


WORKER_INSTANCE = ("instance", "slamon-1:9108")


def series_text(name: str, labels) -> str:
    """Every input series carries a worker's `instance`, as Prometheus' scrape adds it; no expected alert has
    it (but SlamonWorkerDown's, whose subject is the worker), so the tests pin that the rules drop it."""
    labels = tuple(labels)
    if "instance" not in dict(labels):
        labels = (*labels, WORKER_INSTANCE)
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


@dataclass
class Case:
    name: str
    series: Series
    checks: list[tuple[int, bool]]  # (minute, expected to fire)
    intent: str = ""
    expect_value_at: dict[int, float] = field(default_factory=dict)


def _minutes(seconds: int) -> int:
    assert seconds % 60 == 0, "the harness steps in minutes"
    return seconds // 60


# Oracle for ratio alerts (burn rates, call windows): cumulative counters per minute, aligned windows.

def _ratio_series(alert: Alert, decided: list[float], bad: list[float]) -> Series:
    spec = alert.ratio
    if spec.source == "uptime":
        labels = (("client", alert.client), ("sla", alert.sla), ("service", "svc"))
        up = [d - b for d, b in zip(decided, bad, strict=True)]
        return {series_text("slamon_uptime_up_seconds", labels): up,
                series_text("slamon_uptime_downtime_seconds", labels): bad}
    labels = (("client", alert.client), ("sla", alert.sla))
    return {series_text("slamon_sla_decided_total", labels): decided,
            series_text("slamon_sla_bad_total", labels): bad}


def _window(values: list[float], t: int, w: int) -> float | None:
    i0 = max(0, t - w)
    if t - i0 < 1:
        return None  # fewer than two samples
    return values[t] - values[i0]


def _ratio_value(alert: Alert, series: Series, t: int, gate: bool = True) -> float | None:
    """The alert expression's value at minute t (None: no result)."""
    spec = alert.ratio
    vals = list(series.values())
    if spec.source == "uptime":
        up, down = vals
        decided_at = lambda w: (None if _window(up, t, w) is None  # noqa: E731
                                else _window(up, t, w) + _window(down, t, w))
        bad_at = lambda w: _window(down, t, w)  # noqa: E731
    else:
        decided, bad = vals
        decided_at = lambda w: _window(decided, t, w)  # noqa: E731
        bad_at = lambda w: _window(bad, t, w)  # noqa: E731
    for tier in spec.tiers:
        ok, first = True, None
        for w in tier.windows:
            d, b = decided_at(_minutes(w)), bad_at(_minutes(w))
            if d is None:
                ok = False
                break
            ratio = b / d if d else math.nan
            value = {"burn": ratio / spec.allowed, "error": ratio, "good": 1 - ratio}[spec.value]
            holds = value < tier.bound if spec.value == "good" else value > tier.bound
            if not holds:
                ok = False
                break
            if first is None:
                first = value
        if ok and gate:
            vol = decided_at(_minutes(tier.gate_window))
            ok = vol is not None and vol >= spec.gate
        if ok and spec.min_z:  # pages: the long window's bad count above chance at the objective
            d, b, a = decided_at(_minutes(tier.gate_window)), bad_at(_minutes(tier.gate_window)), spec.allowed
            ok = bool(d) and (b - a * d) / math.sqrt(a * (1 - a) * d) > spec.min_z
        if ok:
            return first
    return None


# Oracle for gauge / increase / absent conditions.

def _cond_series(cond: Cond) -> list[str]:
    return [series_text(m, cond.labels) for m in cond.metrics]


def _cond_value(cond: Cond, series: Series, t: int) -> float | None:
    names = _cond_series(cond)
    if cond.kind == "absent":
        return None if any(series.get(n) and series[n][t] is not None for n in names) else 1.0
    if cond.kind == "increase":
        values = series.get(names[0])
        if values is None:
            return None
        return _window(values, t, _minutes(cond.window))
    total = 0.0
    for n in names:
        values = series.get(n)
        if values is None or values[t] is None:
            return None
        total += values[t]
    return total


def _holds(cond: Cond, value: float | None) -> bool:
    if cond.kind == "absent":
        return value is not None
    if value is None:
        return False
    return {">": value > cond.threshold, "<": value < cond.threshold, ">=": value >= cond.threshold,
            "<=": value <= cond.threshold, "==": value == cond.threshold, "!=": value != cond.threshold}[cond.op]


def _gauge_value(alert: Alert, series: Series, t: int, skip_gate: bool = False) -> float | None:
    values = []
    for i, cond in enumerate(alert.conds):
        if skip_gate and i > 0 and _is_gate(alert, cond):
            continue
        v = _cond_value(cond, series, t)
        if not _holds(cond, v):
            return None
        values.append(v)
    return values[0]


def _is_gate(alert: Alert, cond: Cond) -> bool:
    return cond.op == ">=" and cond.metrics != alert.conds[0].metrics


def value_at(alert: Alert, series: Series, t: int, gate: bool = True) -> float | None:
    if alert.ratio is not None:
        return _ratio_value(alert, series, t, gate)
    return _gauge_value(alert, series, t, skip_gate=not gate)


def firing(alert: Alert, series: Series, t: int, gate: bool = True) -> bool:
    """Prometheus `for:` semantics on a minute grid: the condition held at every step in [t - for, t]."""
    start = t - _minutes(alert.for_s)
    if start < 0:
        return False
    return all(value_at(alert, series, s, gate) is not None for s in range(start, t + 1))


def first_firing(alert: Alert, series: Series, horizon: int, gate: bool = True) -> int | None:
    for t in range(horizon + 1):
        if firing(alert, series, t, gate):
            return t
    return None


# Value choice for gauge conditions.

def _candidates(conds: list[Cond]) -> list[float]:
    out = [0.0, 1.0, 2.0, 3.0, 0.5, -0.5]
    for c in conds:
        t = c.threshold
        out += [t, t * 1.5, t / 2, t * 2, t + 1, t - 1, t + 0.1, t - 0.1, t + 0.05, t * 0.9]
    ts = sorted({c.threshold for c in conds})
    out += [(a + b) / 2 for a, b in itertools.pairwise(ts)]
    return out


def _pick(conds_true: list[Cond], conds_false: list[Cond], integer: bool) -> float:
    """A value for one series that makes every cond in conds_true hold and every one in conds_false fail."""
    cands = _candidates(conds_true + conds_false)
    if integer:
        cands = [c for c in cands if c == int(c) and c >= 0] + [10.0, 100.0]
    # prefer realistic values: ratios in [0, 1] for *_ratio gauges
    for c in sorted(set(cands), key=lambda x: (abs(x) > 1, abs(x))):
        if all(_holds(k, c) for k in conds_true) and not any(_holds(k, c) for k in conds_false):
            return float(c)
    raise AssertionError(f"no value satisfies {conds_true} and fails {conds_false}")


_INTEGER = ("items", "_total", "messages", "_decided")


def _gauge_series(alert: Alert, violate_main: bool, gate_open: bool, onset: int, length: int) -> Series:
    """Series for the alert's conds: main violated from `onset` (else healthy), gates open or closed."""
    by_series: dict[tuple, list[Cond]] = {}
    for c in alert.conds:
        by_series.setdefault((c.metrics, c.labels), []).append(c)
    out: Series = {}
    main = alert.conds[0]
    for (metrics, labels), conds in by_series.items():
        integer = any(metrics[0].endswith(s) for s in _INTEGER)
        gates = [c for c in conds if _is_gate(alert, c)]
        others = [c for c in conds if c not in gates]
        if conds[0].kind == "absent":
            names = _cond_series(conds[0])
            if not violate_main:
                out[names[0]] = [1.0] * length
            else:
                out[names[0]] = [1.0 if t < onset else None for t in range(length)]
            continue
        if gates:
            value = _pick(gates, [], integer) if gate_open else _pick([], gates, integer)
            values = [value] * length
        else:
            bad = _pick(others, [], integer)
            fail = [main] if main in others else others[:1]
            good = _pick([c for c in others if c not in fail], fail, integer)
            if conds[0].kind == "increase":
                # a counter: growth per minute chosen so the increase over the window passes (or not)
                w = _minutes(conds[0].window)
                per_min = (conds[0].threshold * 1.5 + 3) / (w / 2) if violate_main else conds[0].threshold / (4 * w)
                per_min = math.ceil(per_min) if violate_main else per_min
                values, total = [], 0.0
                for t in range(length):
                    if t >= onset or not violate_main:
                        total += per_min if t > 0 else 0
                    values.append(total)
                out[series_text(metrics[0], labels)] = values
                continue
            values = [bad if (violate_main and t >= onset) else good for t in range(length)]
        names = [series_text(m, labels) for m in metrics]
        out[names[0]] = values
        for other in names[1:]:
            out[other] = [0.0] * length
    if all(v is None for vals in out.values() for v in vals):
        out['slamon_filler{job="test"}'] = [1.0] * length
    return out


def gauge_cases(alert: Alert) -> list[Case]:
    f = _minutes(alert.for_s)
    length = f + 4 + max(_minutes(c.window) for c in alert.conds)
    cases = []
    s = _gauge_series(alert, True, True, 0, length)
    t = first_firing(alert, s, length - 1)
    assert t is not None, f"{alert.name}: fire scenario does not fire in the oracle"
    cases.append(Case("fires", s, [(t, True)] + ([(t - 1, False)] if f else []), "fires"))
    s = _gauge_series(alert, False, True, 0, length)
    cases.append(Case("silent", s, [(length - 1, False)], "silent"))
    if any(_is_gate(alert, c) for c in alert.conds[1:]):
        s = _gauge_series(alert, True, False, 0, length)
        assert first_firing(alert, s, length - 1, gate=False) is not None
        cases.append(Case("gate", s, [(length - 1, False)], "gate"))
    if f >= 2:
        onset = 2
        length2 = onset + f + 2
        s = _gauge_series(alert, True, True, onset, length2)
        cases.append(Case("pending", s, [(onset + f - 1, False), (onset + f, True)], "pending"))
    return cases


# Ratio alerts.

def _per_minute(length: int, rate: float, ratio_at) -> tuple[list[float], list[float]]:
    """Cumulative decided/bad counters: `rate` per minute, a share ratio_at(t) of them bad."""
    decided, bad, d, b = [], [], 0.0, 0.0
    for t in range(length):
        if t > 0:
            d = round(d + rate, 6)
            b = round(b + rate * ratio_at(t), 6)
        decided.append(d)
        bad.append(b)
    return decided, bad


def ratio_cases(alert: Alert) -> list[Case]:
    spec = alert.ratio
    rate = 60.0 if spec.source == "uptime" else 100.0  # seconds observed / items decided per minute
    f = _minutes(alert.for_s)
    cases = []
    lowest = min(t.threshold for t in spec.tiers)
    for tier in spec.tiers:
        r = min(1.0, tier.threshold * 1.25) if tier.threshold * 1.25 < 1 else (tier.threshold + 1) / 2
        horizon = math.ceil(spec.gate / rate) + f + 10
        decided, bad = _per_minute(horizon + 1, rate, lambda t, r=r: r)
        s = _ratio_series(alert, decided, bad)
        t = first_firing(alert, s, horizon)
        assert t is not None, f"{alert.name} {alert.client}/{alert.sla}: tier {tier.name} never fires"
        n = t + 1
        s = {k: v[:n] for k, v in s.items()}
        cases.append(Case(f"fires-{tier.name}", s, [(t, True)], "fires"))
    # silent: half the lowest threshold, long enough for every gate
    horizon = math.ceil(spec.gate / rate) + f + 5
    decided, bad = _per_minute(horizon + 1, rate, lambda t: lowest / 2)
    cases.append(Case("silent", _ratio_series(alert, decided, bad), [(horizon, False)], "silent"))
    # gate: one bad item (uptime: one bad minute) a minute, all bad, fewer than the gate in the long window
    one = 60.0 if spec.source == "uptime" else 1.0
    if spec.gate > (f + 4) * one:
        horizon = f + 4  # the short window's increase needs two samples, then `for`
        decided = [one * t for t in range(horizon + 1)]  # counters: one more, bad, every minute
        s = _ratio_series(alert, decided, list(decided))
        assert firing(alert, s, horizon, gate=False), f"{alert.name}: one bad item would not fire ungated"
        cases.append(Case("gate-one-bad-item", s, [(horizon, False)], "gate"))
    # recovery (burn rates): a burst of bad items fires, clean traffic afterwards clears it
    if spec.value == "burn":
        burst = f + 5
        longest_short = max(_minutes(min(t.windows)) if len(t.windows) > 1 else 0 for t in spec.tiers)
        horizon = burst + max(_minutes(w) for t in spec.tiers for w in t.windows[1:]) + f + 5
        horizon = max(horizon, burst + longest_short + 5)
        gate_rate = max(rate, spec.gate / 3)  # enough volume within a few minutes
        decided, bad = _per_minute(horizon + 1, gate_rate, lambda t: 1.0 if t <= burst else 0.0)
        s = _ratio_series(alert, decided, bad)
        fired = first_firing(alert, s, burst)
        assert fired is not None, f"{alert.name}: burst does not fire"
        cleared = next(t for t in range(burst, horizon + 1) if not firing(alert, s, t))
        s = {k: v[:cleared + 1] for k, v in s.items()}
        cases.append(Case("recovery", s, [(fired, True), (cleared, False)], "recovery"))
    return cases


def cases_for(alert: Alert) -> list[Case]:
    return ratio_cases(alert) if alert.ratio is not None else gauge_cases(alert)


# --- promtool files ---------------------------------------------------------------------------------------


def _values(values: list[float | None]) -> str:
    """promtool notation; a gap after a sample is a staleness marker (absent() sees it at once)."""
    out, prev = [], None
    for v in values:
        out.append(("stale" if prev is not None else "_") if v is None else repr(float(v)))
        prev = v
    return " ".join(out)


def expected_alert(alert: Alert, case: Case, t: int) -> dict:
    if alert.ratio is not None:
        labels = {}
        value = value_at(alert, case.series, t)
    else:
        main = alert.conds[0]
        labels = {k: v for k, v in main.labels if k in alert.keep}
        value = value_at(alert, case.series, t)
    labels.update(alert.labels)
    annotations = {k: render(getattr(alert, k), labels, value) for k in ("summary", "description")}
    annotations["runbook_url"] = alert.runbook_url
    annotations["dashboard_url"] = alert.dashboard_url
    return {"exp_labels": labels, "exp_annotations": annotations}


def _needed(group: Group, alert: Alert) -> list:
    """The group's recording rules the alert reads, directly or through other records (order kept)."""
    text, keep = alert.expr, set()
    changed = True
    while changed:
        changed = False
        for i, r in enumerate(group.records):
            if i not in keep and re.search(re.escape(r.record) + r"\b", text):
                keep.add(i)
                text += "\n" + r.expr
                changed = True
    return [r for i, r in enumerate(group.records) if i in keep]


def write_test_file(group: Group, alert: Alert, index: int, directory: Path) -> tuple[Path, int]:
    rules = {"groups": [{"name": group.name, "rules": [r.as_rule() for r in _needed(group, alert)] +
                         [alert.as_rule()]}]}
    stem = f"{index:03d}-{alert.name}-{alert.severity}"
    (directory / f"{stem}.rules.yml").write_text(dump_yaml(rules), encoding="utf-8")
    tests = []
    for case in cases_for(alert):
        for minute, fires in case.checks:
            assert firing(alert, case.series, minute) == fires, (alert.name, case.name, minute)
        checks = []
        for minute, fires in case.checks:
            exp = [expected_alert(alert, case, minute)] if fires else []
            checks.append({"eval_time": f"{minute}m", "alertname": alert.name, "exp_alerts": exp})
        tests.append({
            "name": f"{alert.name} {alert.severity} {alert.client}/{alert.sla}: {case.name}",
            "interval": "1m",
            "input_series": [{"series": name, "values": _values(values)}
                             for name, values in case.series.items()],
            "alert_rule_test": checks,
        })
    doc = {"rule_files": [f"{stem}.rules.yml"], "evaluation_interval": "1m", "tests": tests}
    path = directory / f"{stem}.test.yml"
    path.write_text(dump_yaml(doc), encoding="utf-8")
    return path, len(tests)


# --- the tests --------------------------------------------------------------------------------------------


def test_promtool_check_rules(tmp_path, groups):
    _need_promtool()
    written = write_rules(tmp_path, load_contracts(CONTRACTS), load_alerting(ALERTING, env={}))
    assert len(written) == 4
    run = subprocess.run([PROMTOOL, "check", "rules", *map(str, written)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    total = sum(len(g.records) + len(g.alerts) for g in groups)
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", run.stdout))
    assert found == total


def test_promtool_unit_tests_cover_every_alert(tmp_path, groups):
    _need_promtool()
    files, count, covered = [], 0, set()
    index = 0
    for group in groups:
        for alert in group.alerts:
            path, n = write_test_file(group, alert, index, tmp_path)
            files.append(path)
            count += n
            covered.add((alert.name, alert.severity))
            index += 1
    assert index == sum(len(g.alerts) for g in groups)
    from alerts.rules import ALERTS

    assert {name for name, _ in covered} == set(ALERTS), set(ALERTS) - {n for n, _ in covered}

    def run(chunk: list[Path]) -> subprocess.CompletedProcess:
        return subprocess.run([PROMTOOL, "test", "rules", *[p.name for p in chunk]], cwd=tmp_path,
                              capture_output=True, text=True)

    chunks = [files[i::8] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, chunks))
    failures = [r.stdout + r.stderr for r in results if r.returncode != 0]
    assert not failures, "\n".join(failures)[:20000]
    assert count >= 3 * index


# --- Alertmanager -----------------------------------------------------------------------------------------

AMTOOL = shutil.which("amtool")

# labels -> receivers, in the order amtool prints them (examples/alerting.yaml)
# severity values: the default severity_labels (page -> critical, ticket -> warning, info -> info)
ROUTES = [
    ({"severity": "critical", "client": "acme-retail", "sla": "first-response", "category": "burn_rate",
      "long_window": "1h", "short_window": "5m", "team": "sla-operations"}, "page,blackhole"),
    ({"severity": "warning", "client": "acme-retail", "sla": "first-response", "category": "burn_rate",
      "long_window": "1d", "short_window": "2h"}, "ticket"),
    ({"severity": "info", "client": "acme-retail", "sla": "csat", "category": "penalty"}, "ticket"),
    ({"severity": "warning", "client": "globex-bank", "sla": "fraud-resolution", "category": "breach"},
     "globex-account-team"),
    ({"severity": "info", "client": "globex-bank", "sla": "ivr-uptime", "category": "penalty"},
     "globex-account-team"),
    ({"severity": "critical", "client": "globex-bank", "sla": "ivr-uptime", "category": "uptime"},
     "page,blackhole"),
    ({"severity": "critical", "client": "all", "sla": "pipeline", "category": "worker"}, "page,platform"),
    ({"severity": "warning", "client": "zenith-health", "sla": "all", "category": "data_missing"}, "platform"),
    ({"severity": "warning", "client": "all", "sla": "pipeline", "category": "pipeline"}, "platform"),
    # the platform route comes before the client routes: globex-bank's own ticket receiver does not take its
    # data-missing alerts (issue 14)
    ({"severity": "warning", "client": "globex-bank", "sla": "all", "category": "data_missing",
      "alertname": "SlamonNoEvents"}, "platform"),
    ({"severity": "warning", "client": "globex-bank", "sla": "online-banking-uptime", "category": "data_missing",
      "alertname": "SlamonProbeDataMissing"}, "platform"),
]


def _alertmanager_yml(tmp_path, env=None) -> Path:
    from alerts.alertmanager import write_alertmanager

    path = tmp_path / "alertmanager.yml"
    warnings = write_alertmanager(path, load_alerting(ALERTING, env=env or {}), env=env or {})
    assert warnings == []
    return path


def _need_amtool():
    if AMTOOL is None:
        import os

        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("amtool not installed (apt-get install prometheus-alertmanager)")
        pytest.skip("amtool not installed (apt-get install prometheus-alertmanager)")


def test_amtool_check_config(tmp_path):
    _need_amtool()
    from alerts.alertmanager import write_alertmanager

    example = _alertmanager_yml(tmp_path)
    env_only = tmp_path / "env.yml"
    env = {"SLAMON_PAGERDUTY_ROUTING_KEY_FILE": "/run/secrets/pd", "SLAMON_SLACK_API_URL_FILE": "/run/secrets/sl",
           "SLAMON_EMAIL_TO": "a@example.com", "SLAMON_EMAIL_FROM": "b@example.com",
           "SLAMON_SMTP_HOST": "smtp:587", "SLAMON_SMTP_PASSWORD_FILE": "/run/secrets/smtp",
           "SLAMON_WEBHOOK_URL": "http://relay:8080/", "SLAMON_WEBHOOK_TOKEN_FILE": "/run/secrets/tok"}
    write_alertmanager(env_only, None, env=env)
    for path in (example, env_only):
        run = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "SUCCESS" in run.stdout


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[f"{r[0]['severity']}-{r[0]['client']}-"
                                                                f"{r[0]['category']}" for r in ROUTES])
def test_amtool_routes(tmp_path, labels, receivers):
    _need_amtool()
    path = _alertmanager_yml(tmp_path)
    run = subprocess.run([AMTOOL, "config", "routes", "test", f"--config.file={path}",
                          f"--verify.receivers={receivers}", *[f"{k}={v}" for k, v in labels.items()]],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == receivers


def test_alertmanager_inhibition(tmp_path, groups, alertmanager_factory):
    """Real Alertmanager with the generated config: the inhibition rules silence what they should."""
    secrets = {}
    for name in ("pd", "slack", "smtp", "token"):
        (tmp_path / name).write_text("not-a-real-secret\n")
        secrets[name] = str(tmp_path / name)
    env = {"SLAMON_PAGERDUTY_ROUTING_KEY_FILE": secrets["pd"], "SLAMON_SLACK_API_URL_FILE": secrets["slack"],
           "SLAMON_SMTP_PASSWORD_FILE": secrets["smtp"], "SLAMON_PLATFORM_WEBHOOK_TOKEN_FILE": secrets["token"],
           "SLAMON_PLATFORM_WEBHOOK_URL": "http://127.0.0.1:9/", "SLAMON_SMTP_HOST": "127.0.0.1:9"}
    am = alertmanager_factory(config_text=_alertmanager_yml(tmp_path, env).read_text())

    def labels(name, client, sla, severity=None):
        found = [a for g in groups for a in g.alerts if a.name == name and a.client == client and a.sla == sla
                 and (severity is None or a.severity == severity)]
        assert found, (name, client, sla, severity)
        return {"alertname": name, **found[0].labels}

    alerts = {
        "burn-page": labels("SlamonErrorBudgetBurn", "acme-retail", "first-response", "page"),
        "burn-ticket": labels("SlamonErrorBudgetBurn", "acme-retail", "first-response", "ticket"),
        "burn-ticket-other-sla": labels("SlamonErrorBudgetBurn", "acme-retail", "resolution", "ticket"),
        "imminent-ticket-other-alert": labels("SlamonBreachImminent", "acme-retail", "first-response", "ticket"),
        "worker-down": {**labels("SlamonWorkerDown", "all", "pipeline"), "instance": "w1:9108"},
        "no-events": labels("SlamonNoEvents", "zenith-health", "all"),
        "probe-absent": labels("SlamonProbeDataAbsent", "globex-bank", "ivr-uptime"),
        "dead-letters": {**labels("SlamonDeadLettersRising", "all", "pipeline"), "reason": "late"},
        "service-down": labels("SlamonServiceDown", "globex-bank", "ivr-uptime"),
        "ivr-burn-page": labels("SlamonErrorBudgetBurn", "globex-bank", "ivr-uptime", "page"),
        "ivr-exhausted": labels("SlamonErrorBudgetExhausted", "globex-bank", "ivr-uptime"),
    }
    for key, lab in alerts.items():
        lab["test_key"] = key
    am.post_alerts([{"labels": lab, "annotations": {"summary": key}} for key, lab in alerts.items()])
    inhibited = {"burn-ticket", "no-events", "probe-absent", "ivr-burn-page"}

    def settled(found):
        by_key = {a["labels"]["test_key"]: a for a in found}
        return len(by_key) == len(alerts) and all(
            bool(by_key[k]["status"]["inhibitedBy"]) == (k in inhibited) for k in alerts)

    found = am.wait_for_alerts(settled, timeout=20)
    by_key = {a["labels"]["test_key"]: a for a in found}
    assert {k for k, a in by_key.items() if a["status"]["state"] == "suppressed"} == inhibited
