"""The open-clock index's compiled first build (native/open_clocks) against its Python reference
(`OpenClockIndex._entries` and `_stage_instants`, with the calendars' `add_us`): on arbitrary open clocks (running,
paused, decided, past some or all of their stages, with or without a deadline; 24x7 calendars and business
calendars with DST, holidays and no open time for years; several clients sharing an SLA name, two SLA objects of one
name) and on the engines of generated traffic, both builds hold the same values in the same chunks."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import open_clock_index
from monitor.calendar import AlwaysOpen, BusinessCalendar
from monitor.contracts import load_contracts
from monitor.open_clock_index import OpenClockIndex
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate
from monitor.sorted_ints import CHUNK
from monitor.tickets import Clock
from streams.partition_engine import PartitionEngine

compiled_only = pytest.mark.skipif(open_clock_index._open_clocks is None,
                                   reason="the compiled index build is not built (no Rust at install)")

MIN = 60_000_000
DAY = 1440 * MIN
T0 = 1_774_742_400_000_000  # 2026-03-29 00:00 UTC: Europe/Berlin's DST change is that night
NEVER_OPEN_FROM = dt.date(2026, 1, 1)
CALENDARS = [
    AlwaysOpen("UTC"),
    BusinessCalendar("Europe/Berlin", {d: [(9 * 60, 17 * 60)] for d in range(5)}, "DE", None,
                     frozenset({dt.date(2026, 4, 3)})),
    BusinessCalendar("America/New_York", {5: [(0, 90)], 6: [(22 * 60, 1440)]}),
    # open one minute a week, every one of those Mondays a holiday for four years: no business time ahead
    BusinessCalendar("UTC", {0: [(0, 1)]}, holiday_dates=frozenset(
        NEVER_OPEN_FROM + dt.timedelta(days=i) for i in range(4 * 366))),
]
SLAS = [SimpleNamespace(name="fr", stages=(0.5, 0.75, 0.9)), SimpleNamespace(name="res", stages=(0.25, 0.8)),
        SimpleNamespace(name="res", stages=(0.25, 0.8)),  # another object of the same name (a contract reload)
        SimpleNamespace(name="csat", stages=())]

clock = st.builds(
    lambda sla, cal, target_min, elapsed_share, since, deadline, good, priority: (sla, Clock(
        sla=SLAS[sla], cal=CALENDARS[cal], target_us=target_min * MIN + 7, priority=priority,
        elapsed_us=int(target_min * MIN * elapsed_share), since_us=None if since is None else T0 + since,
        deadline_us=None if deadline is None else T0 + deadline, good=good)),
    st.integers(0, len(SLAS) - 1), st.integers(0, len(CALENDARS) - 1), st.integers(1, 60 * 24 * 40),
    st.floats(0, 1.2), st.none() | st.integers(-400 * DAY, 400 * DAY), st.none() | st.integers(0, 50 * DAY),
    st.sampled_from([None, None, None, True, False]), st.sampled_from(["P1", "P2", "P3"]))
ticket = st.tuples(st.sampled_from(["acme", "globex"]), st.lists(clock, max_size=3), st.booleans())


def contents(index: OpenClockIndex) -> dict:
    """Everything the index holds, down to its chunks."""
    def held(s):
        return [list(chunk) for chunk in s._chunks], list(s._firsts), len(s)
    return {key: (g.stages, g.count, {p: n for p, n in g.by_priority.items() if n},
                  {p: held(s) for p, s in g.deadlines.items()}, [held(s) for s in g.reached])
            for key, g in index._groups.items()}


def both_builds(engine, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.setattr(open_clock_index, "COMPILED_BUILD", True)
    compiled = OpenClockIndex(engine)
    compiled.refresh()
    monkeypatch.setattr(open_clock_index, "COMPILED_BUILD", False)
    reference = OpenClockIndex(engine)
    reference.refresh()
    return contents(compiled), contents(reference)


@compiled_only
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ticket, max_size=25))
def test_compiled_build_equals_the_reference_on_arbitrary_clocks(monkeypatch, tickets):
    engine = SimpleNamespace(open_tickets=set(), tickets={})
    for n, (client, clocks, is_open) in enumerate(tickets):
        key = (client, f"T{n}")
        engine.tickets[key] = SimpleNamespace(state=SimpleNamespace(clocks=tuple(c for _, c in clocks)))
        if is_open:
            engine.open_tickets.add(key)
    engine.open_tickets.add(("acme", "not-held"))  # open but without an item: skipped by both
    compiled, reference = both_builds(engine, monkeypatch)
    assert compiled == reference


@compiled_only
def test_compiled_build_equals_the_reference_on_generated_traffic(monkeypatch):
    """A few thousand open tickets of the example contracts: more than one chunk per stage, every calendar."""
    contracts = load_contracts("examples/contracts.yaml")
    cfg = GeneratorConfig(start_us=T0, duration_us=72 * HOUR_US, seed=11, tickets_per_hour=300, calls_per_hour=0)
    pe = PartitionEngine(0, contracts)
    for offset, event in enumerate(generate(contracts, cfg)):
        pe.process(orjson.dumps(event), offset)
    engine = pe.engine
    compiled, reference = both_builds(engine, monkeypatch)
    assert compiled == reference
    assert any(len(stage[0]) > 1 for g in compiled.values() for stage in g[4]), f"want more than {CHUNK} a stage"


@compiled_only
def test_a_rebuild_after_an_unannounced_change_uses_the_compiled_build(monkeypatch):
    monkeypatch.setattr(open_clock_index, "COMPILED_BUILD", True)
    cal = CALENDARS[1]
    engine = SimpleNamespace(open_tickets={("acme", "T1")}, tickets={("acme", "T1"): SimpleNamespace(
        state=SimpleNamespace(clocks=(Clock(sla=SLAS[0], cal=cal, target_us=60 * MIN, priority="P1",
                                            since_us=T0, deadline_us=T0 + DAY),)))})
    index = OpenClockIndex(engine)
    index.refresh()
    engine.tickets[("acme", "T1")].state.clocks[0].deadline_us = T0 + 2 * DAY  # not announced
    index.before_change(("acme", "T1"))
    index.refresh()
    assert index.rebuilds == 1
    assert list(index._groups[("acme", "fr")].deadlines["P1"]) == [T0 + 2 * DAY]
