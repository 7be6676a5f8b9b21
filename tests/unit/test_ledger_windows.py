"""SLA ledger windows: 15-minute buckets inside, exact instants at the edges, pruning of old instants, and what a
worker forgets of ended periods."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.contracts import Rolling
from monitor.ledger import BUCKET_US, DAY_US, PERIOD_GRACE_US, Contribution, SlaLedger, Tally

T0 = 1_793_574_000_000_000  # 2026-11-02T01:00:00Z, a bucket boundary
MIN = 60_000_000


def ledger(period="month") -> SlaLedger:
    return SlaLedger("acme", "sla", "Asia/Kathmandu", period)  # UTC+5:45: local days cut at :15 UTC


def contribution(at: int, good: bool) -> Contribution:
    return Contribution("sla", at, 1, int(good), int(not good))


def brute(applied: list[tuple[int, bool, int]], start: int, end: int) -> tuple[float, float, float]:
    out = Tally()
    for at, good, sign in applied:
        if start <= at < end:
            out.add(1, int(good), int(not good), 0.0, sign)
    return out.decided, out.good, out.bad


def figures(t: Tally) -> tuple[float, float, float]:
    return t.decided, t.good, t.bad


instants = st.integers(T0, T0 + 3 * DAY_US)
decisions = st.lists(st.tuples(instants, st.booleans()), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(decisions, st.data())
def test_window_equals_the_sum_over_its_decisions(ds, data):
    lg, applied = ledger(), []
    for at, good in ds:
        lg.apply(contribution(at, good), +1)
        applied.append((at, good, +1))
    for at, good in data.draw(st.lists(st.sampled_from(ds), max_size=10, unique=True)):  # withdrawn again
        lg.apply(contribution(at, good), -1)
        applied.append((at, good, -1))
    edges = st.one_of(instants, st.sampled_from([a for a, _ in ds]), st.sampled_from([a + 1 for a, _ in ds]),
                      st.integers(0, 300).map(lambda k: T0 + k * BUCKET_US))  # bucket-aligned edges too
    for _ in range(8):
        a, b = sorted((data.draw(edges), data.draw(edges)))
        assert figures(lg.window(a, b)) == brute(applied, a, b)


def test_pruning_keeps_buckets_and_recent_instants():
    lg = ledger()
    ats = [T0 + k * 7 * MIN + 13 for k in range(2000)]  # ~9.7 days, every 7 min
    for k, at in enumerate(ats):
        lg.apply(contribution(at, k % 3 != 0), +1)
    applied = [(at, k % 3 != 0, +1) for k, at in enumerate(ats)]
    now = ats[-1]
    dropped = lg.prune(now)
    assert dropped > 0 and min(lg.instants) >= (now - 2 * DAY_US) // BUCKET_US
    for length in (5 * MIN, 60 * MIN, DAY_US):  # the windows asked for at "now"
        assert figures(lg.window(now + 1 - length, now + 1)) == brute(applied, now + 1 - length, now + 1)
    old_day = (T0 + BUCKET_US * 4, T0 + BUCKET_US * 4 + DAY_US)  # whole buckets, long pruned
    assert figures(lg.window(*old_day)) == brute(applied, *old_day)
    with pytest.raises(LookupError, match="pruned"):
        lg.window(T0 + 5, T0 + DAY_US)  # cuts a pruned bucket: refused, never a silently wrong figure


def test_rolling_periods_keep_their_length_and_odd_lengths_keep_everything():
    lg = ledger(Rolling(rolling="30d"))
    assert lg.detail_keep_us == 32 * DAY_US
    odd = ledger(Rolling(rolling="601s"))
    odd.apply(contribution(T0, True), +1)
    assert odd.detail_keep_us is None and odd.prune(T0 + 365 * DAY_US) == 0 and odd.instants


def test_a_worker_forgets_buckets_and_breach_lists_of_ended_periods_but_keeps_their_tallies():
    lg = SlaLedger("acme", "sla", "UTC", "month", list_breaches=True)
    oct_, nov = T0 - 5 * DAY_US, T0 + 2 * DAY_US  # 2026-10-28 and 2026-11-04
    for at in (oct_, nov):
        lg.apply(Contribution("sla", at, 1, 0, 1, item=f"T{at}"), +1)
    nov_start = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z
    lg.forget_old_periods(nov_start + PERIOD_GRACE_US - 1)  # October ended less than the grace ago: kept
    assert set(lg.breaches) == {"2026-10", "2026-11"} and oct_ // BUCKET_US in lg.buckets
    lg.dirty_buckets, lg.dirty_breach_days = set(), set()
    lg.forget_old_periods(nov_start + PERIOD_GRACE_US)
    assert set(lg.breaches) == {"2026-11"} and oct_ // BUCKET_US not in lg.buckets
    assert lg.periods["2026-10"].bad == 1 and lg.periods["2026-11"].bad == 1  # the report still lists October
    assert oct_ // BUCKET_US in lg.dirty_buckets and oct_ // DAY_US in lg.dirty_breach_days  # tombstones
    assert figures(lg.window(nov - 1, nov + 1)) == (1, 0, 1)


def test_a_breach_withdrawn_after_its_period_was_forgotten_is_no_error():
    """A worker's wall clock runs days past a silent client; its backlog then arrives (not late: the client's own
    watermark is old) and withdraws a breach whose period's listing was already forgotten. That used to raise
    ValueError inside the engine, dead-lettering the event with its ticket part-applied."""
    lg = SlaLedger("acme", "sla", "UTC", "month", list_breaches=True)
    oct_ = T0 - 5 * DAY_US
    lg.apply(Contribution("sla", oct_, 1, 0, 1, item="T1"), +1)
    lg.forget_old_periods(T0 + 2 * DAY_US)
    assert "2026-10" not in lg.breaches
    lg.apply(Contribution("sla", oct_, 1, 0, 1, item="T1"), -1)
    assert lg.periods["2026-10"].bad == 0 and not lg.breaches_on(oct_ // DAY_US)


operations = st.lists(st.one_of(
    st.tuples(st.just("apply"), instants, st.booleans()),
    st.tuples(st.just("withdraw"), st.integers(0, 10_000), st.booleans()),
    st.tuples(st.just("ask"), instants, st.sampled_from([1, 5 * MIN, BUCKET_US, 60 * MIN, DAY_US, 3 * DAY_US])),
    st.tuples(st.just("merge"), instants, st.booleans()),
    st.tuples(st.just("forget"), st.integers(0, 3), st.booleans()),
), min_size=1, max_size=80)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_window_counts_follow_every_change(ops):
    """The cumulative counts of `window_counts` stay equal to `window` and to the decisions themselves while
    decisions are added, withdrawn (anywhere in time), merged in from another ledger and old buckets forgotten."""
    lg, applied = ledger(), []
    for op, x, y in ops:
        if op == "apply":
            lg.apply(contribution(x, y), +1)
            applied.append((x, y, +1))
        elif op == "withdraw" and applied:
            at, good, _ = applied[x % len(applied)]
            lg.apply(contribution(at, good), -1)
            applied.append((at, good, -1))
        elif op == "merge":
            other = ledger()
            other.apply(contribution(x, y), +1)
            lg.merge(other)
            applied.append((x, y, +1))
        elif op == "forget":  # a rolling ledger's forgetting drops whole old buckets
            limit = T0 + x * DAY_US // 2
            lg._forget_buckets_before(limit)
            applied = [a for a in applied if a[0] // BUCKET_US >= -(-limit // BUCKET_US) or
                       (a[0] // BUCKET_US + 1) * BUCKET_US > limit]
        else:
            end = x + 1
            counts = lg.window_counts(end - y, end)
            assert tuple(counts) == figures(lg.window(end - y, end)) == brute(applied, end - y, end)
    for a, b in ((T0, T0 + 3 * DAY_US), (T0 + 7, T0 + DAY_US + 7)):
        assert tuple(lg.window_counts(a, b)) == brute(applied, a, b)


def test_window_counts_refuse_a_pruned_edge_as_window_does():
    lg = ledger()
    for k in range(2000):
        lg.apply(contribution(T0 + k * 7 * MIN + 13, True), +1)
    lg.prune(T0 + 2000 * 7 * MIN)
    with pytest.raises(LookupError, match="pruned"):
        lg.window_counts(T0 + 5, T0 + DAY_US)


# --- summed values of the mean kinds (README "Means") ---------------------------------------------------------------

def test_a_retraction_undoes_its_addition_exactly():
    """0.1 s + 0.2 s - 0.1 s is 0.2 s exactly (as floats it is 0.20000000000000004)."""
    lg = ledger()
    first, second = (Contribution("sla", T0 + i * MIN, 1, 0, 0, wait, wait) for i, wait in enumerate((0.1, 0.2)))
    lg.apply(first, +1)
    lg.apply(second, +1)
    lg.apply(first, -1)
    (tally,) = lg.periods.values()
    assert tally.total_us == 200_000 and tally.total == 0.2 and tally.decided == 1
    assert lg.window(T0, T0 + DAY_US).total == 0.2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20 * DAY_US // MIN), st.integers(0, 3_600_000_000), st.booleans()),
                max_size=40), st.randoms(use_true_random=False))
def test_summed_waits_are_exact_in_any_order_and_from_any_split(items, rnd):
    """Waits of whole microseconds, some added and later retracted, in any order and split over two ledgers: every
    sum is the exact integer, and two halves merge to it."""
    ops = [(T0 + minute * MIN, wait_us, +1) for minute, wait_us, _ in items]
    ops += [(at, wait_us, -1) for (at, wait_us, _), (_, _, retract) in zip(ops, items, strict=True) if retract]
    kept = [op for op, (_, _, retract) in zip(ops, items, strict=False) if not retract]
    rnd.shuffle(ops)
    whole, halves = ledger(), [ledger(), ledger()]
    for i, (at, wait_us, sign) in enumerate(ops):
        c = Contribution("sla", at, 1, 0, 0, wait_us / 1e6, wait_us / 1e6)
        whole.apply(c, sign)
        halves[i % 2].apply(c, sign)
    merged = ledger()
    for half in halves:
        merged.merge(half)
    for label, tally in whole.periods.items():
        window = whole.windows[label]
        exact = sum(w for at, w, _ in kept if window.start_us <= at < window.end_us)
        assert tally.total_us == exact == merged.periods[label].total_us
        assert tally.total == exact / 1e6
