"""Uptime ledgers fold old probe segments into 15-minute bucket tallies: every figure a report asks for stays
equal to the unfolded ledger's, cut folded buckets and probes into the folded range are refused, the kept
probes stay bounded, and checkpoints (dirty tracking, restore_state) and merges are exact."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.contracts import Rolling, UptimeSla
from monitor.events import format_us
from monitor.ledger import BUCKET_US, DAY_US
from monitor.report import BURN_WINDOWS, RECENT_US, _uptime_records, build_report
from monitor.uptime import UptimeLedger
from tests.builders import probe, run, us

T0 = 1_793_581_200_000_000  # 2026-11-02T01:00:00Z, a bucket boundary
S = 1_000_000
MIN = 60 * S
HOUR = 60 * MIN


def make(interval: str = "60s", maintenance=(), period="month", tz: str = "UTC") -> UptimeLedger:
    sla = UptimeSla(name="up", kind="uptime", target=0.99, service="portal", probe_interval=interval, period=period)
    return UptimeLedger("acme", sla, tz, list(maintenance))


def feed(ledger: UptimeLedger, probes) -> UptimeLedger:
    for ts, up in probes:
        ledger.add_probe(ts, up)
    return ledger


def figures(ledger: UptimeLedger, start: int, end: int) -> tuple[int, int, int]:
    return ledger.between(start, end).as_tuple()


def pattern(start: int, end: int, step: int):
    """Probes every `step`, down for 7 of every 97 probes, with a missing stretch (> 3 intervals) now and then."""
    out, ts, n = [], start, 0
    while ts < end:
        if n % 613 not in range(600, 605):  # five probes missing: a 6-interval gap, unknown
            out.append((ts, n % 97 >= 7))
        ts += step
        n += 1
    return out


def restored(ledger: UptimeLedger) -> UptimeLedger:
    """A ledger rebuilt from what the checkpoint writes."""
    other = UptimeLedger(ledger.client, ledger.sla, ledger.tz, ledger.maintenance)
    other.restore_state(ledger.first_probe_us, ledger.probes(),
                        {bucket: tally.as_tuple() for bucket, tally in ledger.buckets.items()})
    return other


# --- figures stay exact -----------------------------------------------------------------------------------


def test_folding_keeps_period_and_now_based_windows():
    maintenance = [(T0 + 2 * DAY_US + 10 * MIN, T0 + 2 * DAY_US + 95 * MIN)]
    probes = pattern(T0 + 7 * MIN + 13 * S, T0 + 10 * DAY_US, 30 * S)
    folded, plain = (make("30s", maintenance, "day", "Asia/Kathmandu") for _ in range(2))
    feed(plain, probes)
    for day in range(1, 11):  # fold daily, as compaction would
        feed(folded, [p for p in probes if T0 + (day - 1) * DAY_US <= p[0] < T0 + day * DAY_US])
        folded.fold(T0 + day * DAY_US - folded.detail_keep_us)
    now = probes[-1][0] + 45 * S
    assert folded.folded_us is not None and folded.folded_us > T0 + 7 * DAY_US
    # the whole history, whole local days (UTC+5:45: they start at 18:15 UTC), the buckets of the first day
    day = T0 - 6 * HOUR - 45 * MIN
    windows = [(T0 - DAY_US, now), (T0, now), (day, now)]
    windows += [(day + d * DAY_US, day + (d + 1) * DAY_US) for d in range(11)]
    windows += [(T0 + k * BUCKET_US, T0 + (k + 1) * BUCKET_US) for k in range(96)]
    windows += [(now - length, now) for length in (*BURN_WINDOWS.values(), RECENT_US)]
    for start, end in windows:
        assert figures(folded, start, end) == figures(plain, start, end), (start, end)
    assert _uptime_records(folded, now) == _uptime_records(plain, now)  # every period and its live figures


def test_report_of_an_engine_with_folded_ledgers_is_unchanged():
    contract = """
clients:
  acme:
    timezone: Asia/Kathmandu
    maintenance:
      - {start: "2026-11-03T10:05:00Z", end: "2026-11-03T11:10:00Z", services: [portal]}
    slas:
      - {name: up, kind: uptime, target: 0.99, service: portal, probe_interval: 60s, period: day}
"""
    events, ts = [], us("2026-11-01T23:52:17Z")
    for n in range(4 * 24 * 60):
        if n % 500 not in range(200, 210):
            events.append(probe(format_us(ts), "down" if n % 41 < 3 else "up"))
        ts += MIN
    at = ts + 30 * S
    engine, _ = run(contract, events, format_us(at))
    before = build_report(engine, at)
    (ledger,) = engine.clients["acme"].uptime["portal"]
    assert ledger.fold(at - ledger.detail_keep_us) > 0
    assert build_report(engine, at) == before
    assert before[0].period_start == "2026-11-01T18:15:00Z"  # the first probe's local day, though folded away


def test_unknown_gaps_across_a_fold_boundary():
    probes = [(T0, True), (T0 + 1 * MIN, True), (T0 + 5 * MIN, False),  # 4-minute gap: unknown
              (T0 + 6 * MIN, False), (T0 + 14 * MIN, True),  # 8 minutes, down->up: unknown
              (T0 + 40 * MIN, True),  # a 26-minute gap over the bucket boundary at 15: unknown in both buckets
              (T0 + 41 * MIN, True)]
    plain = feed(make(), probes)
    for horizon in (T0 + 10 * MIN, T0 + 20 * MIN, T0 + 40 * MIN + 30 * S):
        folded = feed(make(), probes)
        folded.fold(horizon)
        for start, end in [(T0, T0 + BUCKET_US), (T0, T0 + 2 * BUCKET_US), (T0 + BUCKET_US, T0 + 2 * BUCKET_US),
                           (T0, T0 + 41 * MIN), (T0, T0 + 50 * MIN), (T0, T0 + 45 * MIN)]:
            try:
                assert figures(folded, start, end) == figures(plain, start, end)
            except LookupError:  # only a window ending inside a folded bucket may be refused
                assert end % BUCKET_US and end < folded.folded_us
    folded = feed(make(), probes)
    folded.fold(T0 + 40 * MIN)  # the 26-minute gap ends exactly at the horizon: folded, split over two buckets
    assert folded.times == [T0 + 40 * MIN, T0 + 41 * MIN]
    assert folded.buckets[T0 // BUCKET_US + 1].as_tuple() == (0, 0, 15 * MIN)
    assert folded.buckets[T0 // BUCKET_US].as_tuple() == (1 * MIN, 1 * MIN, 13 * MIN)
    assert figures(folded, T0, T0 + 43 * MIN) == (4 * MIN, 1 * MIN, 38 * MIN)  # the live tail 41-43 is up


def test_a_gap_to_the_first_kept_probe_stays_unknown():
    plain = feed(make(), [(T0, True), (T0 + 30 * MIN, True), (T0 + 31 * MIN, True)])
    folded = copy.deepcopy(plain)
    folded.fold(T0 + 29 * MIN)  # the gap ends after the horizon: nothing can fold yet
    assert folded.folded_us is None and len(folded.times) == 3
    assert figures(folded, T0, T0 + 32 * MIN) == figures(plain, T0, T0 + 32 * MIN) == (2 * MIN, 0, 30 * MIN)


def test_maintenance_across_folded_buckets():
    maintenance = [(T0 + 10 * MIN, T0 + 50 * MIN)]  # the whole second and third buckets
    probes = [(T0 + m * MIN, m % 5 != 0) for m in range(0, 70)]
    plain, folded = feed(make("60s", maintenance), probes), feed(make("60s", maintenance), probes)
    folded.fold(T0 + 65 * MIN)
    assert T0 // BUCKET_US + 1 not in folded.buckets and T0 // BUCKET_US + 2 not in folded.buckets
    assert folded.buckets[T0 // BUCKET_US].as_tuple() == (8 * MIN, 2 * MIN, 0)
    assert folded.buckets[T0 // BUCKET_US + 3].as_tuple() == (8 * MIN, 2 * MIN, 0)
    assert folded.buckets[T0 // BUCKET_US + 4].as_tuple() == (4 * MIN, 1 * MIN, 0)  # folded up to 65 only
    for k in range(6):
        for j in range(k + 1, 6):
            a, b = T0 + k * BUCKET_US, T0 + j * BUCKET_US
            assert figures(folded, a, b) == figures(plain, a, b)
    # a window cutting a bucket that holds only maintenance is still exact (zero)
    assert figures(folded, T0 + 20 * MIN, T0 + 66 * MIN) == figures(plain, T0 + 20 * MIN, T0 + 66 * MIN)
    assert figures(folded, T0, T0 + 4 * BUCKET_US) == (16 * MIN, 4 * MIN, 0)


# --- the folded range -------------------------------------------------------------------------------------


def test_first_probe_after_folding():
    ledger = feed(make(), [(T0 + 7 * MIN + k * MIN, True) for k in range(100)])
    assert ledger.first_probe_us == T0 + 7 * MIN
    assert ledger.fold(T0 + 50 * MIN) == 43
    assert ledger.first_probe_us == T0 + 7 * MIN and ledger.times[0] == ledger.folded_us == T0 + 50 * MIN
    ledger.fold(T0 + 90 * MIN)
    assert ledger.first_probe_us == T0 + 7 * MIN and ledger.last_probe() == (T0 + 106 * MIN, True)
    assert make().first_probe_us is None


def test_a_window_cutting_a_folded_bucket_is_refused():
    ledger = feed(make(), [(T0 + 7 * MIN + k * MIN, True) for k in range(100)])
    ledger.fold(T0 + 60 * MIN)
    for start, end in [(T0 + 20 * MIN, T0 + 70 * MIN), (T0, T0 + 40 * MIN), (T0 + 16 * MIN, T0 + 17 * MIN)]:
        with pytest.raises(LookupError, match="cuts a 15-minute bucket"):
            ledger.between(start, end)
    # edges before the first probe, on bucket boundaries or in the kept range are fine
    assert figures(ledger, T0 + 3 * MIN, T0 + 60 * MIN) == (53 * MIN, 0, 0)
    assert figures(ledger, T0 + 30 * MIN, T0 + 61 * MIN + 7) == (31 * MIN + 7, 0, 0)
    assert figures(ledger, T0 + 60 * MIN + 1, T0 + 61 * MIN) == (MIN - 1, 0, 0)


def test_a_probe_into_the_folded_range_is_refused():
    ledger = feed(make(), [(T0 + k * MIN, True) for k in range(10)])
    ledger.fold(T0 + 5 * MIN + 30 * S)
    assert ledger.folded_us == T0 + 5 * MIN
    with pytest.raises(ValueError, match="folded range"):
        ledger.add_probe(T0 + 5 * MIN - 1, False)
    assert ledger.times == [T0 + k * MIN for k in range(5, 10)]
    # at the horizon itself: only the kept first probe's state changes, which no folded segment depends on
    plain = feed(make(), [(T0 + k * MIN, True) for k in range(10)])
    ledger.add_probe(T0 + 5 * MIN, False)
    plain.add_probe(T0 + 5 * MIN, False)
    ledger.add_probe(T0 + 5 * MIN + 30 * S, True)  # between the folded range and the horizon it was given
    plain.add_probe(T0 + 5 * MIN + 30 * S, True)
    assert figures(ledger, T0, T0 + 11 * MIN) == figures(plain, T0, T0 + 11 * MIN) == (10 * MIN + 30 * S, 30 * S, 0)


def test_kept_probes_stay_bounded():
    ledger = make("30s")
    day_probes = DAY_US // (30 * S)
    for day in range(10):
        feed(ledger, [(T0 + day * DAY_US + k * 30 * S, k % 50 != 0) for k in range(day_probes)])
        now = T0 + (day + 1) * DAY_US - 30 * S
        ledger.fold(now - ledger.detail_keep_us)
        assert len(ledger.times) == len(ledger.states) <= 2 * day_probes + 1
    assert ledger.first_probe_us == T0
    assert len(ledger.buckets) == 8 * 96  # one tally per 15 minutes folded, whatever the probe rate
    down = 10 * len(range(0, day_probes, 50)) * 30 * S
    assert figures(ledger, T0, T0 + 10 * DAY_US) == (10 * DAY_US - down, down, 0)


def test_detail_keep():
    assert make().detail_keep_us == 2 * DAY_US
    assert make(period=Rolling(rolling="30d")).detail_keep_us == 32 * DAY_US
    assert make(period=Rolling(rolling="3601s")).detail_keep_us is None


# --- checkpoints and merges -------------------------------------------------------------------------------


def test_dirty_tracking():
    ledger = feed(make(), [(T0 + k * MIN, True) for k in range(40)])
    assert ledger.probes_dirty and not ledger.dirty_buckets
    ledger.probes_dirty = False
    ledger.fold(T0 + 20 * MIN)
    assert ledger.probes_dirty and ledger.dirty_buckets == {T0 // BUCKET_US, T0 // BUCKET_US + 1}
    ledger.probes_dirty, ledger.dirty_buckets = False, set()
    ledger.fold(T0 + 20 * MIN)  # nothing new
    assert not ledger.probes_dirty and not ledger.dirty_buckets
    ledger.add_probe(T0 + 40 * MIN, False)
    assert ledger.probes_dirty and not ledger.dirty_buckets
    ledger.fold(T0 + 35 * MIN)
    assert ledger.dirty_buckets == {T0 // BUCKET_US + 1, T0 // BUCKET_US + 2}  # the partly folded bucket again


def test_restore_state_round_trip():
    probes = pattern(T0 + 3 * S, T0 + DAY_US, 60 * S)
    ledger = feed(make(), probes)
    assert restored(ledger).between(T0, T0 + DAY_US) == ledger.between(T0, T0 + DAY_US)
    assert restored(ledger).folded_us is None
    ledger.fold(T0 + 20 * HOUR + 7 * S)
    back = restored(ledger)
    assert (back.first_probe_us, back.folded_us, back.times, back.buckets) == (
        ledger.first_probe_us, ledger.folded_us, ledger.times, ledger.buckets)
    assert not back.dirty_buckets and not back.probes_dirty
    used = feed(make(), probes[:10])
    used.fold(T0 + 5 * MIN)
    used.restore_state(ledger.first_probe_us, ledger.probes(), {b: t.as_tuple() for b, t in ledger.buckets.items()})
    assert (used.times, used.buckets, used.dirty_buckets, used.probes_dirty) == (ledger.times, ledger.buckets, set(),
                                                                                 False)
    for ld in (back, ledger):  # both go on alike
        ld.add_probe(T0 + DAY_US + 40 * S, False)
        ld.fold(T0 + 23 * HOUR)
    assert back.between(T0, T0 + DAY_US + HOUR) == ledger.between(T0, T0 + DAY_US + HOUR)
    with pytest.raises(ValueError, match="probe at"):
        back.add_probe(T0 + 20 * HOUR, True)


def test_merge_into_an_empty_ledger_is_exact():
    probes = pattern(T0, T0 + DAY_US, 60 * S)
    plain, folded = feed(make(), probes), feed(make(), probes)
    folded.fold(T0 + 20 * HOUR + 7 * MIN)  # inside a bucket: it is folded further below, in the copy only
    empty = make()
    empty.merge(folded)
    assert empty.between(T0, T0 + 25 * HOUR) == plain.between(T0, T0 + 25 * HOUR)
    assert empty.dirty_buckets == set(folded.buckets) and empty.probes_dirty
    empty.fold(T0 + 22 * HOUR)  # the copies are its own
    assert folded.between(T0, T0 + 25 * HOUR) == plain.between(T0, T0 + 25 * HOUR)
    folded.merge(make())
    assert folded.between(T0, T0 + 25 * HOUR) == plain.between(T0, T0 + 25 * HOUR)


def test_merge_of_a_folded_ledger_with_later_probes():
    probes = pattern(T0, T0 + DAY_US, 60 * S)
    early, late = [p for p in probes if p[0] < T0 + 20 * HOUR], [p for p in probes if p[0] >= T0 + 20 * HOUR]
    plain = feed(make(), probes)
    for swap in (False, True):
        folded, recent = feed(make(), early), feed(make(), late)
        folded.fold(T0 + 18 * HOUR)
        if swap:
            recent.merge(folded)
            folded = recent
        else:
            folded.merge(recent)
        assert folded.between(T0, T0 + 25 * HOUR) == plain.between(T0, T0 + 25 * HOUR)


def test_merge_refuses_what_it_cannot_do_exactly():
    probes = pattern(T0, T0 + DAY_US, 60 * S)
    a, b = feed(make(), probes[::2]), feed(make(), probes[1::2])
    a.fold(T0 + 10 * HOUR)
    before = (list(a.times), dict(a.buckets))
    with pytest.raises(ValueError, match="folded range"):
        a.merge(b)  # b's probes fall inside a's folded segments
    assert (a.times, a.buckets) == before  # refused before changing anything
    with pytest.raises(ValueError, match="folded range"):
        b.merge(a)
    b.fold(T0 + 12 * HOUR)
    with pytest.raises(ValueError, match="folded range"):
        a.merge(b)
    early, late = feed(make(), probes[:300]), feed(make(), probes[600:])
    early.fold(T0 + 2 * HOUR)
    late.fold(T0 + 20 * HOUR)
    with pytest.raises(ValueError, match="folded range"):  # two folded ranges: no single horizon
        late.merge(early)


# --- property ---------------------------------------------------------------------------------------------

INTERVAL = MIN
gaps = st.one_of(st.integers(1, 3 * INTERVAL), st.sampled_from([0, 3 * INTERVAL, 3 * INTERVAL + 1]),
                 st.integers(3 * INTERVAL + 1, 2 * HOUR), st.integers(1, 90).map(lambda k: k * MIN))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@st.composite
def scenarios(draw):
    ts = T0 + draw(st.integers(0, 2 * BUCKET_US))
    probes = []
    for gap in draw(st.lists(gaps, min_size=1, max_size=60)):
        probes.append((ts, draw(st.booleans())))
        ts += gap
    last = probes[-1][0]
    maintenance = _merged([(a, a + draw(st.integers(1, 2 * HOUR)))
                           for a in draw(st.lists(st.integers(T0, last), max_size=3))])
    order = draw(st.permutations(range(len(probes))))
    # folds: after the arrival of some probe, at a horizon no later than any probe still to come
    folds = {}
    for step in draw(st.lists(st.integers(0, len(probes) - 1), max_size=6)):
        pending = [probes[i][0] for i in order[step + 1:]]
        cap = min(pending) if pending else last + HOUR
        folds[step] = cap - draw(st.integers(0, 2 * HOUR))
    return probes, maintenance, order, folds, last


def _check(folded: UptimeLedger, plain: UptimeLedger, data, last: int) -> None:
    assert folded.first_probe_us == plain.first_probe_us and folded.last_probe() == plain.last_probe()
    kept_from = folded.folded_us if folded.folded_us is not None else T0
    n_buckets = (last + HOUR - T0) // BUCKET_US + 2
    aligned = st.integers(-1, n_buckets).map(lambda k: T0 + k * BUCKET_US)
    kept = st.integers(kept_from, last + HOUR)
    anywhere = st.integers(T0 - MIN, last + HOUR)
    for start_edges, end_edges in [(aligned, aligned), (aligned, kept), (kept, kept), (anywhere, anywhere)]:
        for _ in range(4):
            a, b = sorted((data.draw(start_edges), data.draw(end_edges)))
            try:
                got = figures(folded, a, b)
            except LookupError:  # only windows with an edge inside a bucket with folded time
                assert start_edges is anywhere
                first, limit = folded.first_probe_us, folded.folded_us
                assert (first < a < limit and a % BUCKET_US) or (first < b < limit and b % BUCKET_US)
                continue
            assert got == figures(plain, a, b), (a, b)
    back = restored(folded)
    a, b = sorted((data.draw(aligned), data.draw(kept)))
    assert figures(back, a, b) == figures(plain, a, b)


@settings(max_examples=250, deadline=None)
@given(scenarios(), st.data())
def test_folding_at_increasing_horizons_keeps_every_answer(scenario, data):
    probes, maintenance, order, folds, last = scenario
    folded, plain = make("60s", maintenance), make("60s", maintenance)
    for step, i in enumerate(order):
        ts, up = probes[i]
        folded.add_probe(ts, up)
        plain.add_probe(ts, up)
        if step in folds:
            folded.fold(folds[step])
            _check(folded, plain, data, last)
    folded.fold(last + 1)
    assert folded.times == [last]  # everything but the live tail folded
    _check(folded, plain, data, last)
