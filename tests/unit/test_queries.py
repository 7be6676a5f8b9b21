"""Engine queries (monitor/queries.py): what the report and the metrics collector both ask of a live engine."""

from monitor.queries import all_periods, decisions_between, open_clocks, waiting_calls
from tests.builders import call, run, ticket, us

CONTRACT = """
clients:
  acme:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h, P2: 4h}, objective: 0.9, time: calendar,
         stages: [0.5, 0.75]}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
"""
MIN = 60 * 1_000_000


def test_open_clocks_by_priority_stage_and_due_span():
    events = [
        ticket("2026-01-05T09:00:00+00:00", "T1", "created", priority="P1"),  # 45 min elapsed at 09:45: 0.75
        ticket("2026-01-05T09:30:00+00:00", "T2", "created", priority="P2"),  # 15 min of 4 h: no stage
        ticket("2026-01-05T09:00:00+00:00", "T3", "created", priority="P2"),
        ticket("2026-01-05T09:10:00+00:00", "T3", "agent_reply"),  # decided: not open
    ]
    engine, _ = run(CONTRACT, events, "2026-01-05T09:45:00+00:00")
    live = open_clocks(engine, us("2026-01-05T09:45:00+00:00"), (15 * MIN, 30 * MIN))
    fr = live[("acme", "fr")]
    assert fr.count == 2 and dict(fr.by_priority) == {"P1": 1, "P2": 1}
    assert dict(fr.stages) == {0.75: 1}
    assert fr.due_within(15 * MIN) == 1 and fr.due[("P1", 30 * MIN)] == 1 and fr.due[("P2", 30 * MIN)] == 0
    assert fr.next_deadline_us == us("2026-01-05T10:00:00+00:00")
    assert open_clocks(engine, us("2026-01-05T09:45:00+00:00"), clients=["globex"]) == {}


def test_waiting_calls_per_queue_and_windows_of_decisions():
    events = [
        call("2026-01-05T09:00:00+00:00", "C1", "offered", queue="a"),
        call("2026-01-05T09:01:00+00:00", "C2", "offered", queue="a"),
        call("2026-01-05T09:02:00+00:00", "C3", "offered", queue="b"),
        call("2026-01-05T09:02:10+00:00", "C3", "answered", queue="b"),
    ]
    engine, _ = run(CONTRACT, events, "2026-01-05T09:05:00+00:00")
    waiting = waiting_calls(engine, "acme", us("2026-01-05T09:05:00+00:00"))
    assert set(waiting) == {"a"} and waiting["a"].count == 2
    assert waiting["a"].oldest_us == us("2026-01-05T09:00:00+00:00")
    assert waiting_calls(engine, "acme", us("2026-01-05T09:00:30+00:00"))["a"].count == 1  # C2 not yet offered
    t = decisions_between(engine, "acme", "sl", us("2026-01-05T09:02:10+00:00"), us("2026-01-05T09:02:11+00:00"))
    assert (t.decided, t.good) == (1, 1)
    assert decisions_between(engine, "acme", "sl", 0, us("2026-01-05T09:02:10+00:00")).decided == 0
    assert all_periods(engine, "acme", "sl").decided == 1
