"""Recording rules inlined into alert expressions (alerts.backtest.inline) and the pending -> firing state machine
over step series (alerts.backtest.scoring.alert_spans): pure, no Prometheus."""

from __future__ import annotations

import pytest

from alerts.backtest import BacktestError
from alerts.backtest.inline import EMPTY, Inliner, matches, parse_matchers
from alerts.backtest.scoring import alert_spans, episodes_from_series


def _files(*rules: dict) -> dict[str, dict]:
    return {"r.yml": {"groups": [{"name": "g", "rules": list(rules)}]}}


def _named(inner: str, record: str, **labels: str) -> str:
    out = f'label_replace(({inner}), "__name__", "{record}", "", "")'
    for k, v in labels.items():
        out = f'label_replace({out}, "{k}", "{v}", "", "")'
    return out


RATIO_A = {
    "record": "job:ratio:5m",
    "expr": 'sum by (client) (rate(bad_total{client="a"}[5m]))',
    "labels": {"client": "a", "sla": "s"},
}
RATIO_B = {
    "record": "job:ratio:5m",
    "expr": 'sum by (client) (rate(bad_total{client="b"}[5m]))',
    "labels": {"client": "b", "sla": "s"},
}


def test_a_reference_becomes_the_rules_expression_named_and_labelled():
    inl = Inliner(_files(RATIO_A), step_s=60)
    out = inl.expr('job:ratio:5m{client="a"} > 0.1')
    assert out == "(" + _named(RATIO_A["expr"], "job:ratio:5m", client="a", sla="s") + ") > 0.1"


def test_matchers_on_the_rules_labels_choose_the_producers():
    inl = Inliner(_files(RATIO_A, RATIO_B), step_s=60)
    a = _named(RATIO_A["expr"], "job:ratio:5m", client="a", sla="s")
    b = _named(RATIO_B["expr"], "job:ratio:5m", client="b", sla="s")
    assert inl.expr('job:ratio:5m{client="b"}') == f"({b})"
    assert inl.expr("job:ratio:5m") == f"({a} or {b})"
    assert inl.expr('job:ratio:5m{client=~"a|b", sla!="x"}') == f"({a} or {b})"
    assert inl.expr('job:ratio:5m{client="c"}') == EMPTY
    assert inl.expr('job:ratio:5m{__name__="job:ratio:5m", client!~"a"}') == f"({b})"


def test_a_matcher_on_another_label_is_left_to_prometheus():
    inl = Inliner(_files(RATIO_A), step_s=60)
    out = inl.expr('job:ratio:5m{queue="phone"}')
    assert "label_replace(" in out and '"queue", "phone")' in out and " and on(__backtest_match) " in out
    out = inl.expr('job:ratio:5m{queue!~"ph.*"}')
    assert '"queue", "ph.*")' in out and " unless on(__backtest_match) " in out


def test_layers_are_inlined_recursively_and_grouping_clauses_are_left_alone():
    burn = {
        "record": "job:burn:5m",
        "expr": 'job:ratio:5m{client="a"} / on (client, sla) group_left job:ratio:5m',
        "labels": {"client": "a"},
    }
    inl = Inliner(_files(RATIO_A, burn), step_s=60)
    out = inl.expr("max by (client, job:burn:5m) (job:burn:5m) > 2 # comment job:burn:5m")
    assert out.startswith("max by (client, job:burn:5m) ((label_replace(label_replace(((label_replace(")
    assert out.count(RATIO_A["expr"]) == 2 and "comment" not in out
    assert "on (client, sla) group_left (" in out


def test_ranges_over_a_recording_become_subqueries_at_the_evaluation_step():
    inl = Inliner(_files(RATIO_A), step_s=30)
    assert inl.expr("max_over_time(job:ratio:5m[1h])").endswith(")[1h:30s])")
    assert inl.expr("max_over_time(job:ratio:5m[1h:5m])").endswith(")[1h:5m])")


def test_scalars_are_recorded_as_vectors_and_cycles_and_unsupported_forms_fail():
    const = {"record": "job:allowed:ratio", "expr": "0.05", "labels": {"sla": "s"}}
    inl = Inliner(_files(const), step_s=60, result_type=lambda e: "scalar" if e == "0.05" else "vector")
    assert inl.expr("job:allowed:ratio") == "(" + _named("vector(0.05)", "job:allowed:ratio", sla="s") + ")"
    loop = _files({"record": "a:b", "expr": "c:d + 1"}, {"record": "c:d", "expr": "a:b"})
    with pytest.raises(BacktestError, match="cycle"):
        Inliner(loop, 60).expr("a:b")
    inl = Inliner(_files(RATIO_A), 60)
    for bad in ("job:ratio:5m offset 5m", 'absent(job:ratio:5m{client="a"})', '{__name__="job:ratio:5m"}'):
        with pytest.raises(BacktestError):
            inl.expr(bad)


def test_label_values_with_dollars_and_quotes_are_escaped():
    rule = {"record": "x:y", "expr": "up", "labels": {"note": 'costs $1 "now"'}}
    assert '"costs $$1 \\"now\\""' in Inliner(_files(rule), 60).expr("x:y")


def test_matchers_parse_and_match_like_prometheus():
    assert parse_matchers('a="x", b=~"y|z",c!="\\"q\\"" , d!~`r.*`') == [
        ("a", "=", "x"),
        ("b", "=~", "y|z"),
        ("c", "!=", '"q"'),
        ("d", "!~", "r.*"),
    ]
    assert matches("=~", "0\\.5|0\\.8", "0.8") and not matches("=~", "a", "ab") and matches("!~", "a", "ab")


# --- the rule manager's state machine ---------------------------------------------------------------------


def test_an_alert_fires_after_for_and_a_gap_resets_a_pending_one():
    # present 0..4 min, gap, 6..20 min; for 5m
    times = [0, 60, 120, 180, 240, *range(360, 1260, 60)]
    assert alert_spans(times, for_s=300, step_s=60) == [(360, 660, 1200)]
    assert alert_spans(times, for_s=0, step_s=60) == [(0, 0, 240), (360, 360, 1200)]


def test_keep_firing_for_bridges_short_gaps_and_extends_the_end():
    times = [0, 60, 120, 300, 360]  # missing at 180 and 240
    assert alert_spans(times, for_s=60, step_s=60) == [(0, 60, 120), (300, 360, 360)]
    # keep_firing_for 2m: firing at 180 and 240 (less than 2m since 180), back at 300: one span
    assert alert_spans(times, for_s=60, step_s=60, keep_firing_for_s=120, end_s=900) == [(0, 60, 480)]
    # 1m: only 180 is kept; the 240 evaluation resolves it
    assert alert_spans(times, for_s=60, step_s=60, keep_firing_for_s=60, end_s=900) == [(0, 60, 180), (300, 360, 420)]
    # a pending alert is not kept
    assert alert_spans([0, 180], for_s=120, step_s=60, keep_firing_for_s=600) == []
    # the history's end caps the tail
    assert alert_spans([0, 60], for_s=0, step_s=60, keep_firing_for_s=600, end_s=120) == [(0, 0, 120)]


def test_series_of_one_alert_firing_together_are_one_episode():
    eps = episodes_from_series("A", "page", "breach", "c", "s", 0, 60, [[0, 60, 120], [120, 180]])
    assert [(e.pending_s, e.start_s, e.end_s) for e in eps] == [(0, 0, 180)]


# --- progress bars ------------------------------------------------------------------------------------------


def test_progress_bars_show_share_and_eta_only_when_enabled():
    import io

    from alerts.backtest.progress import Progress

    out = io.StringIO()
    bar = Progress("scrape", total=200, stream=out)
    bar.started -= 30  # 30 s in
    bar.update(50, "2026-11-30T06:00:00Z", force=True)
    line = out.getvalue()
    assert line.startswith("\rbacktest scrape") and " 25%" in line and "ETA 1m30s" in line and "2026-11-30" in line
    assert bar.finish("done") >= 30 and out.getvalue().endswith("done\x1b[K\n")
    quiet = io.StringIO()
    bar = Progress("alerts", total=3, enabled=False, stream=quiet)
    bar.update(1, force=True)
    bar.finish()
    assert quiet.getvalue() == ""
    counter = io.StringIO()
    Progress("prometheus", stream=counter).update(0, force=True)
    assert "ETA" not in counter.getvalue() and "%" not in counter.getvalue()
