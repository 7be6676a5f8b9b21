"""Call metrics: service level (with abandon variants), ASA, abandon rate, AHT, calls waiting."""

import pytest

from tests.builders import call, run

CONTRACT = """
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: sl-ignore, kind: service_level, target: 0.8, within: 20s, abandons: ignore}
      - {name: asa, kind: asa, target: 30s}
      - {name: ab, kind: abandon_rate, target: 0.05}
      - {name: aht, kind: aht, target: 300s}
      - {name: billing-sl, kind: service_level, target: 0.9, within: 10s, queues: [billing]}
"""
T0 = "2026-11-02T09:00:"


def calls():
    return [
        # answered after 20 s exactly (within), 25 s (not within)
        call(T0 + "00+01:00", "c1", "offered"), call(T0 + "20+01:00", "c1", "answered"),
        call(T0 + "05+01:00", "c2", "offered"), call(T0 + "30+01:00", "c2", "answered"),
        # short abandon (3 s): counts nowhere; long abandon (40 s): bad
        call(T0 + "10+01:00", "c3", "offered"), call(T0 + "13+01:00", "c3", "abandoned"),
        call(T0 + "10+01:00", "c4", "offered"), call(T0 + "50+01:00", "c4", "abandoned"),
        # ended with wrap-up: handle = 100 s talk + 20 s wrap-up
        call("2026-11-02T09:02:00+01:00", "c1", "ended", wrapup_seconds=20),
        # still waiting
        call("2026-11-02T09:04:00+01:00", "c5", "offered"),
    ]


def rec(r, sla):
    return r[(sla, "2026-11")]


@pytest.fixture(scope="module")
def report():
    return run(CONTRACT, calls(), "2026-11-02T09:05:00+01:00")[1]


def test_service_level_counts_abandons_and_excludes_short_ones(report):
    r = rec(report, "sl")
    assert (r.decided, r.good, r.bad) == (3, 1, 2)
    assert r.value == pytest.approx(1 / 3)


def test_service_level_can_ignore_abandons(report):
    r = rec(report, "sl-ignore")
    assert (r.decided, r.good) == (2, 1) and r.value == 0.5


def test_asa_is_the_mean_wait_of_answered_calls(report):
    r = rec(report, "asa")
    assert r.decided == 2 and r.value == pytest.approx(22.5) and r.met
    assert r.error_budget_remaining == pytest.approx(1 - 22.5 / 30)


def test_abandon_rate_excludes_short_abandons(report):
    r = rec(report, "ab")
    assert (r.decided, r.bad) == (3, 1) and r.value == pytest.approx(1 / 3) and not r.met


def test_aht_includes_wrapup(report):
    r = rec(report, "aht")
    assert r.decided == 1 and r.value == pytest.approx(120)


def test_calls_waiting(report):
    assert rec(report, "sl").open == 1


def test_queue_filter(report):
    assert rec(report, "billing-sl").decided == 0


def test_answer_before_offer_arrives_is_held_until_the_offer():
    events = [call(T0 + "20+01:00", "c1", "answered"), call(T0 + "00+01:00", "c1", "offered")]
    engine, r = run(CONTRACT, events, "2026-11-02T09:05:00+01:00")
    assert rec(r, "sl").good == 1 and engine.orphan_events() == 0


def test_call_counts_in_the_period_of_its_answer():
    events = [call("2026-11-30T23:59:50+01:00", "c1", "offered"),
              call("2026-12-01T00:00:10+01:00", "c1", "answered")]
    _, r = run(CONTRACT, events, "2026-12-01T01:00:00+01:00")
    assert r[("sl", "2026-12")].good == 1 and ("sl", "2026-11") not in r


# --- eviction of finished calls (Engine.compact) -------------------------------------------------------------

LATE_CONTRACT = CONTRACT.replace("clients:", "allowed_lateness: 10m\nclients:")


def _feed(events, *, compact: bool):
    import orjson

    from monitor.contracts import parse_contracts
    from monitor.engine import Engine
    from monitor.events import decode_event

    contracts = parse_contracts(LATE_CONTRACT)
    engine = Engine(contracts)
    for d in events:
        engine.ingest(decode_event(orjson.dumps(d), contracts.clients))
    if compact:
        engine.compact()
    return engine, _figures(engine)


def _figures(engine) -> list[str]:
    from monitor.report import build_report
    from tests.builders import us

    return sorted(map(repr, build_report(engine, us("2026-11-02T10:00:00+01:00"))))


def _evictable_day():
    later = "2026-11-02T09:20:"  # the watermark ends at 09:30: horizon 09:20
    return [
        *calls(),  # c1 ended, c3 and c4 abandoned by 09:02; c2 answered, not ended; c5 still waiting
        call(T0 + "30+01:00", "c6", "offered"), call(T0 + "45+01:00", "c6", "answered"),  # answered, not ended
        call(later + "00+01:00", "c7", "offered"), call(later + "30+01:00", "c7", "abandoned"),  # after horizon
        call("2026-11-02T09:30:00+01:00", "c8", "offered"),  # moves the watermark
    ]


def test_compaction_drops_calls_that_finished_before_the_lateness_horizon():
    engine, _ = _feed(_evictable_day(), compact=True)
    # kept: no end yet (c2, c6), waiting (c5, c8), ended after the horizon (c7)
    assert sorted(k[1] for k in engine.calls) == ["c2", "c5", "c6", "c7", "c8"]
    assert engine.stats.evicted_calls == 3


def test_dropping_finished_calls_changes_no_figure():
    _, kept = _feed(_evictable_day(), compact=False)
    _, evicted = _feed(_evictable_day(), compact=True)
    assert evicted == kept


def test_an_event_after_a_dropped_calls_end_is_held_as_an_orphan():
    import orjson

    from monitor.events import decode_event

    engine, before = _feed(_evictable_day(), compact=True)
    stray = decode_event(orjson.dumps(call("2026-11-02T09:29:00+01:00", "c1", "ended")), engine.contracts.clients)
    assert engine.ingest(stray) is None
    assert engine.orphan_events() == 1  # a producer error; the call's figures stay as they were
    assert _figures(engine) == before


def test_a_call_that_leaves_the_queue_unanswered_is_no_longer_waiting():
    # a callback accepted or a transfer out of the queue: offered, then ended, never answered nor abandoned
    events = [*calls(), call("2026-11-02T09:04:10+01:00", "c6", "offered"),
              call("2026-11-02T09:04:40+01:00", "c6", "ended")]
    _, r = run(CONTRACT, events, "2026-11-02T09:05:00+01:00")
    assert rec(r, "sl").open == 1  # c5 only
    assert rec(r, "sl").decided == 3  # c6 counts in no SLA
